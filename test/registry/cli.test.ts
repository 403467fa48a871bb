// `slipway copy` and `slipway inspect` end to end against real registries, checked with skopeo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Index } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { startProxy } from '../harness/proxy.ts';
import { pushFixture, fixturesMissing, skopeoRawManifest } from '../harness/fixtures.ts';
import { runCli } from '../harness/cli.ts';

const skip = registryMissing() ?? fixturesMissing();

async function cli(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const r = await runCli(args);
  return { code: r.code, stdout: r.stdoutBytes, stderr: r.stderr };
}

async function assertSameImage(a: TestRegistry, aRef: string, b: TestRegistry, bRef: string): Promise<void> {
  const top = await skopeoRawManifest(a, aRef);
  assert.deepEqual(await skopeoRawManifest(b, bRef), top);
  const index = JSON.parse(top.toString()) as Index;
  for (const m of index.manifests ?? []) {
    const repoA = aRef.replace(/:[^:/]+$/, '');
    const repoB = bRef.replace(/:[^:/]+$/, '');
    assert.deepEqual(await skopeoRawManifest(b, `${repoB}@${m.digest}`), await skopeoRawManifest(a, `${repoA}@${m.digest}`));
  }
}

test('slipway copy: multi-arch index to another registry keeps every digest', { skip }, async () => {
  const src = await startRegistry();
  const dst = await startRegistry();
  try {
    const fx = await pushFixture(src, 'multiarch', 'fx/multi:1');
    const r = await cli(['copy', '-q', fx.ref, `${dst.host}/copied/multi`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString().trim(), fx.digest);
    await assertSameImage(src, fx.ref, dst, `${dst.host}/copied/multi:1`);
    // v2s2 and a 22-layer image too
    for (const name of ['v2s2', 'layers20'] as const) {
      const f = await pushFixture(src, name, `fx/${name}:t`);
      const c = await cli(['copy', f.ref, `${dst.host}/copied/${name}:t`]);
      assert.equal(c.code, 0, c.stderr);
      await assertSameImage(src, f.ref, dst, `${dst.host}/copied/${name}:t`);
    }
    // one platform out of the index
    const one = await cli(['copy', '-q', '--platform', 'linux/arm64', fx.ref, `${dst.host}/copied/arm:1`]);
    assert.equal(one.code, 0, one.stderr);
    const idx = JSON.parse((await skopeoRawManifest(src, fx.ref)).toString()) as Index;
    assert.equal(one.stdout.toString().trim(), idx.manifests.find((m) => m.platform?.architecture === 'arm64')!.digest);
  } finally {
    await src.stop();
    await dst.stop();
  }
});

test('slipway copy on one registry mounts blobs instead of uploading them', { skip }, async () => {
  const reg = await startRegistry({ auth: 'token' });
  const proxy = await startProxy(reg.url);
  const prev = process.env.DOCKER_CONFIG;
  try {
    const fx = await pushFixture(reg, 'multiarch', 'fx/multi:1');
    const cfg = reg.dockerConfig();
    // credentials for the proxy's host (the CLI reads $DOCKER_CONFIG/config.json)
    const { mkdtempSync, writeFileSync, readFileSync, rmSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/slipway-cfg-');
    const auth = Object.values(JSON.parse(readFileSync(cfg, 'utf8')).auths as Record<string, { auth: string }>)[0];
    writeFileSync(`${dir}/config.json`, JSON.stringify({ auths: { [proxy.host]: auth } }));
    process.env.DOCKER_CONFIG = dir;
    const r = await cli(['copy', `${proxy.host}/fx/multi:1`, `${proxy.host}/other/multi:2`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /blobs uploaded: 0 \(0 bytes\), mounted: 4/);
    const mounts = proxy.requests.filter((q) => q.method === 'POST' && q.path.includes('mount='));
    assert.equal(mounts.length, 4, 'one mount per blob (2 configs + 2 layers)');
    assert.ok(mounts.every((q) => q.status === 201));
    assert.equal(proxy.requests.filter((q) => q.method === 'PATCH' || (q.method === 'PUT' && q.path.includes('/blobs/'))).length, 0, 'no blob bytes uploaded');
    assert.equal(proxy.requests.filter((q) => q.method === 'GET' && q.path.includes('/blobs/')).length, 0, 'no blob bytes downloaded');
    await assertSameImage(reg, fx.ref, reg, `${reg.host}/other/multi:2`);
    rmSync(dir, { recursive: true, force: true });
  } finally {
    if (prev === undefined) delete process.env.DOCKER_CONFIG; else process.env.DOCKER_CONFIG = prev;
    await proxy.stop();
    await reg.stop();
  }
});

test('slipway inspect: digest, platforms, config summary and --raw bytes', { skip }, async () => {
  const reg = await startRegistry();
  try {
    const fx = await pushFixture(reg, 'multiarch', 'fx/multi:1');
    const r = await cli(['inspect', fx.ref]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    assert.match(text, new RegExp(`Digest: +${fx.digest}`));
    assert.match(text, /MediaType: +application\/vnd\.oci\.image\.index\.v1\+json/);
    assert.match(text, /Platform: +linux\/amd64/);
    assert.match(text, /Platform: +linux\/arm64/);
    const p = await cli(['inspect', '--platform', 'linux/arm64', fx.ref]);
    assert.match(p.stdout.toString(), /Label: +fixture=busybox-arm64/);
    assert.match(p.stdout.toString(), /Cmd: +\["\/bin\/sh"\]/);
    const raw = await cli(['inspect', '--raw', fx.ref]);
    assert.deepEqual(raw.stdout, await skopeoRawManifest(reg, fx.ref));
    const bad = await cli(['inspect', `${reg.host}/fx/Multi:1`]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid image reference .* must be lowercase/);
    const missing = await cli(['inspect', `${reg.host}/fx/multi:nope`]);
    assert.match(missing.stderr, /image not found/);
    const plat = await cli(['inspect', '--platform', 'linux/riscv64', fx.ref]);
    assert.match(plat.stderr, /available: linux\/amd64, linux\/arm64/);
  } finally {
    await reg.stop();
  }
});
