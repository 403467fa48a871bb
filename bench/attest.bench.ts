// `npm run bench attest`: what attaching provenance (mode=max) and an SBOM costs on a warm
// two-platform push (nothing changed, so only the push remains), through the bundled CLI against a
// local registry. Target (issue 12): at most 10 % over the same push without attestations.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { printTable, hasCommand } from './report.ts';
import { shell } from './workloads/builders.ts';
import { startRegistry } from '../test/harness/registry.ts';
import { fixturesMissing, pushFixture } from '../test/harness/fixtures.ts';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export default async function attestBench(): Promise<void> {
  const missing = !hasCommand('docker-registry') ? 'docker-registry not installed (scripts/dev bench installs it)' : fixturesMissing();
  if (missing) {
    console.log(`skipped: ${missing}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'slipway-bench-attest-'));
  const registry = await startRegistry();
  try {
    const base = (await pushFixture(registry, 'multiarch', 'library/busybox:1')).ref;
    await shell('node scripts/build.mjs');
    const ctx = join(work, 'ctx');
    await shell(`mkdir -p ${ctx}`);
    writeFileSync(join(ctx, 'Dockerfile'), `FROM ${base}\nCOPY app.bin /app/app.bin\nCOPY config.txt /app/\n`);
    writeFileSync(join(ctx, 'app.bin'), randomBytes(16 << 20));
    writeFileSync(join(ctx, 'config.txt'), 'config\n');
    const cli = new URL('../dist/cli.js', import.meta.url).pathname;
    const push = (tag: string, extra: string) => shell(`${process.execPath} ${cli} build --progress quiet --cache-dir ${join(work, 'cache')} ` +
      `--platform linux/amd64,linux/arm64 -t ${registry.host}/bench/attest:${tag} --push ${extra} ${ctx} >/dev/null 2>&1`, { ...process.env, SOURCE_DATE_EPOCH: '1700000000' });
    const attest = process.env.BENCH_ATTEST ?? '--attest type=provenance,mode=max --attest type=sbom';
    await push('plain', '');
    await push('attested', attest);
    const plain: number[] = [];
    const attested: number[] = [];
    for (let i = 0; i < 5; i++) {
      plain.push((await push('plain', '')).seconds);
      attested.push((await push('attested', attest)).seconds);
    }
    const p = median(plain);
    const a = median(attested);
    printTable('warm two-platform push (16 MB layer on busybox), median of 5', [
      { name: 'slipway push', seconds: p },
      { name: 'slipway push + provenance + SBOM', seconds: a, note: `+${(((a - p) / p) * 100).toFixed(0)} % (target ≤ 10 %)` },
    ]);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
