// `slipway inspect --format json` / `--config` print the stored bytes, as `skopeo inspect --raw` and
// `skopeo inspect --config --raw` do, for a registry image and for the file transports.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, skopeoFlags, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { runCli } from '../harness/cli.ts';

const skip = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
const work = mkdtempSync(join(tmpdir(), 'slipway-inspect-'));
before(async () => {
  if (!skip) reg = await startRegistry();
});
after(async () => {
  await reg?.stop();
});

const skopeo = (args: string[]) => execFileSync('skopeo', args, { maxBuffer: 64 << 20 });

async function ours(args: string[]): Promise<Buffer> {
  const r = await runCli(['inspect', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdoutBytes;
}

test('inspect --format json and --config print the bytes skopeo prints', { skip, timeout: 60_000 }, async () => {
  const multi = await pushFixture(reg, 'multiarch', 'inspect/multi:1');
  const single = await pushFixture(reg, 'v2s2', 'inspect/v2s2:1');
  const tar = join(work, 'multi.oci.tar');
  assert.equal((await runCli(['copy', multi.ref, `oci-archive:${tar}:1`])).code, 0);
  const dockerTar = join(work, 'one.docker.tar');
  assert.equal((await runCli(['copy', single.ref, `docker-archive:${dockerTar}:inspect/one:1`])).code, 0);
  const arm = ['--override-os', 'linux', '--override-arch', 'arm64'];
  const cases: Array<{ name: string; ours: string; theirs: string; flags: string[] }> = [
    { name: 'registry index', ours: multi.ref, theirs: `docker://${multi.ref}`, flags: skopeoFlags(reg) },
    { name: 'registry docker v2s2 image', ours: single.ref, theirs: `docker://${single.ref}`, flags: skopeoFlags(reg) },
    { name: 'oci-archive index', ours: `oci-archive:${tar}:1`, theirs: `oci-archive:${tar}:1`, flags: [] },
  ];
  for (const c of cases) {
    assert.deepEqual(await ours(['--format', 'json', c.ours]), skopeo(['inspect', '--raw', ...c.flags, c.theirs]), `${c.name}: raw`);
    assert.deepEqual(await ours(['--config', '--platform', 'linux/arm64', c.ours].filter((a) => !(c.name.includes('v2s2') && /arm64|--platform/.test(a)))),
      skopeo(['inspect', '--config', '--raw', ...(c.name.includes('v2s2') ? [] : arm), ...c.flags, c.theirs]), `${c.name}: config`);
  }
  // A docker archive has no manifest to print raw; its config is its own bytes.
  assert.deepEqual(await ours(['--config', `docker-archive:${dockerTar}`]), skopeo(['inspect', '--config', '--raw', `docker-archive:${dockerTar}`]));
  assert.match((await runCli(['inspect', `oci-archive:${tar}:1`])).stdout, /Platform:\s+linux\/arm64/);
  const bad = await runCli(['inspect', '--format', 'yaml', multi.ref]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /unknown --format "yaml": expected json/);
});
