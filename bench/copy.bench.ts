// Copy a ~1 GB, 9-layer image (made with umoci, pushed with skopeo) between two repositories of one
// registry and between two registries: `slipway copy` against `skopeo copy`, each into a fresh target.
// Target (issue 17): registry → registry, slipway's throughput ≥ 1.0 × skopeo's. slipway runs as
// users run it, the bundled dist/cli.js (rebuilt first; BENCH_SLIPWAY_CLI=src runs src/cli/main.ts,
// whose type stripping at start-up costs about a second). BENCH_SMALL=1 copies 8 × 6.4 MiB instead
// of 8 × 128 MiB.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { printTable, printTargets, hasCommand, scaled, small, secs, type Row } from './report.ts';
import { startRegistry } from '../test/harness/registry.ts';
import { randomLayersLayout, pushLayout } from '../test/harness/fixtures.ts';
import type { Manifest } from '../src/oci/index.ts';

const bundled = process.env.BENCH_SLIPWAY_CLI !== 'src';
const cli = fileURLToPath(new URL(bundled ? '../dist/cli.js' : '../src/cli/main.ts', import.meta.url));
const exec = promisify(execFile);

/** Wall seconds of a shell command, run asynchronously: the registries' log pipes must keep draining. */
async function timeShell(command: string): Promise<number> {
  const start = performance.now();
  await exec('bash', ['-c', command], { maxBuffer: 16 << 20 });
  return (performance.now() - start) / 1000;
}

export default async function copyBench(): Promise<void> {
  if (!hasCommand('skopeo') || !hasCommand('umoci') || !hasCommand('docker-registry')) {
    console.log('skipped: needs skopeo, umoci and docker-registry');
    return;
  }
  if (bundled) await timeShell('node scripts/build.mjs');
  const layerBytes = scaled(128 << 20);
  const layout = await randomLayersLayout(small ? 'bench-1g-small' : 'bench-1g', Array.from({ length: 8 }, () => layerBytes));
  const a = await startRegistry();
  const b1 = await startRegistry();
  const b2 = await startRegistry();
  try {
    const src = await pushLayout(a, `${layout}:image`, 'bench/src:1');
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(readFileSync(join(layout, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8')) as Manifest;
    const bytes = [manifest.config, ...manifest.layers].reduce((n, d) => n + d.size, 0);
    const node = process.execPath;
    const skopeo = 'skopeo copy --insecure-policy --src-tls-verify=false --dest-tls-verify=false';

    const same: Row[] = [
      { name: 'slipway copy (mounts)', seconds: await timeShell(`${node} ${cli} copy -q ${src.ref} ${a.host}/bench/slipway:1`), bytes },
      { name: 'skopeo copy', seconds: await timeShell(`${skopeo} docker://${src.ref} docker://${a.host}/bench/skopeo:1`), bytes },
    ];
    printTable(`copy ${(bytes / 1e6).toFixed(0)} MB, ${manifest.layers.length} layers, between two repositories of one registry`, same);

    const cross: Row[] = [
      { name: 'slipway copy', seconds: await timeShell(`${node} ${cli} copy -q ${src.ref} ${b1.host}/bench/copy:1`), bytes },
      { name: 'skopeo copy', seconds: await timeShell(`${skopeo} docker://${src.ref} docker://${b2.host}/bench/copy:1`), bytes },
    ];
    printTable(`copy ${(bytes / 1e6).toFixed(0)} MB, ${manifest.layers.length} layers, between two registries`, cross);
    // Throughput ratio = skopeo's seconds ÷ slipway's (same bytes). Between two registries is the
    // target's case (nothing can be mounted); the same-registry table above shows what mounting buys.
    const mbps = (s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;
    printTargets('copy targets (throughput slipway ÷ skopeo)', [
      { name: `registry → registry copy, ${(bytes / 1e6).toFixed(0)} MB`, figures: `slipway ${secs(cross[0].seconds)} s ${mbps(cross[0].seconds)}, skopeo ${secs(cross[1].seconds)} s ${mbps(cross[1].seconds)}`, value: cross[1].seconds / cross[0].seconds, limit: 1, kind: 'at least', unit: '×' },
    ]);
  } finally {
    await a.stop();
    await b1.stop();
    await b2.stop();
  }
}
