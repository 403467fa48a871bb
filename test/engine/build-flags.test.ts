// buildx build flags that shape what RUN steps see, end to end with a real registry and runc:
// --add-host lines in the step's /etc/hosts (not in the layer), and in the step's cache key;
// BUILDKIT_SANDBOX_HOSTNAME as the steps' hostname.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { buildContext, makeContext, runMissing, unpackOci } from './helpers.ts';

describe('build flags for RUN steps', { skip: registryMissing() ?? fixturesMissing() ?? runMissing() }, () => {
  let reg: TestRegistry;
  let busybox: string;
  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
  });
  after(async () => reg?.stop());

  test('--add-host: the lines are in /etc/hosts during RUN, not in the image, and part of the step key', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN cat /etc/hosts > /hosts.txt\n` });
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-addhost-cache-'));
    const out = join(mkdtempSync(join(tmpdir(), 'slipway-addhost-')), 'img.tar');
    const first = await buildContext(ctx, { cacheDir, addHosts: ['db.internal:10.1.2.3', 'v6host:[::1]'], outputs: [`type=oci,dest=${out}`] });
    assert.equal(first.result.steps.run, 1);
    const rootfs = join(await unpackOci(out), 'rootfs');
    const hosts = readFileSync(join(rootfs, 'hosts.txt'), 'utf8');
    assert.match(hosts, /^10\.1\.2\.3\tdb\.internal$/m);
    assert.match(hosts, /^::1\tv6host$/m);
    const inImage = join(rootfs, 'etc/hosts');
    assert.ok(!existsSync(inImage) || !readFileSync(inImage, 'utf8').includes('db.internal'), 'the bind never lands in the layer');
    const same = await buildContext(ctx, { cacheDir, addHosts: ['db.internal:10.1.2.3', 'v6host:[::1]'] });
    assert.equal(same.result.steps.cached, 1, 'same hosts: cached');
    const other = await buildContext(ctx, { cacheDir, addHosts: ['db.internal:10.9.9.9'] });
    assert.equal(other.result.steps.run, 1, 'other hosts: the step runs again');
  });

  test('--build-arg BUILDKIT_SANDBOX_HOSTNAME sets the steps\' hostname (default buildkitsandbox), and is part of the step key; RUN --security=sandbox is the default sandbox', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --security=sandbox hostname > /h.txt && grep -c "$(hostname)" /etc/hosts > /in-hosts.txt\n` });
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-hostname-cache-'));
    const read = async (buildArgs: string[]) => {
      const out = join(mkdtempSync(join(tmpdir(), 'slipway-hostname-')), 'img.tar');
      const b = await buildContext(ctx, { cacheDir, buildArgs, outputs: [`type=oci,dest=${out}`] });
      const rootfs = join(await unpackOci(out), 'rootfs');
      return { run: b.result.steps.run, name: readFileSync(join(rootfs, 'h.txt'), 'utf8'), inHosts: readFileSync(join(rootfs, 'in-hosts.txt'), 'utf8') };
    };
    assert.deepEqual(await read([]), { run: 1, name: 'buildkitsandbox\n', inHosts: '1\n' });
    assert.deepEqual(await read(['BUILDKIT_SANDBOX_HOSTNAME=builder-7']), { run: 1, name: 'builder-7\n', inHosts: '1\n' });
    assert.equal((await read(['BUILDKIT_SANDBOX_HOSTNAME=builder-7'])).run, 0, 'the same hostname: cached');
  });
});
