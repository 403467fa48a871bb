// A single-platform base image of another platform than the build's, from a real registry: as
// BuildKit's resolver, the manifest is the image whatever its platform (only an index is chosen
// from), and the InvalidBaseImagePlatform check warns, in the build and in --check.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, registryPort } from '../../src/engine/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { makeBuildRequest } from '../../src/request/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { buildContext, makeContext, run } from './helpers.ts';

const skip = registryMissing() ?? fixturesMissing() ?? (process.arch === 'x64' ? undefined : 'the host platform is not linux/amd64');

async function imageOf(out: string): Promise<{ architecture: string; layers: number; labels: Record<string, string> }> {
  const { stdout: config } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
  const { stdout: manifest } = await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`]);
  const c = JSON.parse(config);
  return { architecture: c.architecture, layers: JSON.parse(manifest).layers.length, labels: c.config.Labels ?? {} };
}

describe('a single-platform base of another platform', { skip }, () => {
  let reg: TestRegistry;
  let arm: string;
  let amd: string;
  before(async () => {
    reg = await startRegistry();
    arm = (await pushFixture(reg, 'arm64', 'plat/arm:1')).ref;
    amd = (await pushFixture(reg, 'amd64', 'plat/amd:1')).ref;
  });
  after(async () => reg?.stop());

  test('is built on, with the InvalidBaseImagePlatform warning; the image takes the requested platform, else the base\'s', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${arm}\nCOPY a /a\n`, a: 'a' });
    const out = join(mkdtempSync(join(tmpdir(), 'slipway-baseplat-')), 'img.tar');
    const implicit = await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const warning = `InvalidBaseImagePlatform: Base image ${arm} was pulled with platform "linux/arm64", expected "linux/amd64" for current build (line 1)`;
    assert.deepEqual(implicit.log.filter((l) => l.startsWith('WARN')), [`WARN ${warning}`]);
    // No --platform: the image keeps the base's platform (BuildKit's implicit target).
    assert.deepEqual(await imageOf(out), { architecture: 'arm64', layers: 2, labels: { fixture: 'busybox-arm64' } });

    const ctx2 = makeContext({ Dockerfile: `FROM ${amd}\nCOPY a /a\n`, a: 'a' });
    const out2 = join(ctx2, 'img.tar');
    const explicit = await buildContext(ctx2, { platforms: ['linux/arm64'], outputs: [`type=oci,dest=${out2}`] });
    assert.deepEqual(explicit.log.filter((l) => l.startsWith('WARN')),
      [`WARN InvalidBaseImagePlatform: Base image ${amd} was pulled with platform "linux/amd64", expected "linux/arm64" for current build (line 1)`]);
    assert.deepEqual(await imageOf(out2), { architecture: 'arm64', layers: 2, labels: { fixture: 'busybox-amd64' } });

    // The same base for its own platform: no warning.
    const same = await buildContext(ctx2, { platforms: ['linux/amd64'], outputs: [`type=oci,dest=${join(ctx2, 'same.tar')}`] });
    assert.deepEqual(same.log.filter((l) => l.startsWith('WARN')), []);
  });

  test('--check resolves the base and reports InvalidBaseImagePlatform', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${arm}\nENV A=b\n` });
    const request = makeBuildRequest({ context: '.', cwd: ctx, env: {}, platforms: ['linux/amd64'], cacheDir: mkdtempSync(join(tmpdir(), 'slipway-cache-')) });
    const client = new RegistryClient({ insecureRegistries: request.insecureRegistries });
    try {
      const report = await check(request, { registry: registryPort(client) });
      assert.deepEqual(report.warnings.map((w) => [w.rule, w.message, w.lines?.start]),
        [['InvalidBaseImagePlatform', `Base image ${arm} was pulled with platform "linux/arm64", expected "linux/amd64" for current build`, 1]]);
    } finally {
      await client.close();
    }
  });
});
