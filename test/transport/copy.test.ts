// `slipway copy` across transports against the real registry, checked with tools that are not ours
// (skopeo, umoci, GNU tar): registry → oci-archive → docker-archive → registry. The OCI formats keep
// every manifest's bytes, so the digests stay; a docker archive keeps no manifest, so what holds
// there is the config (same bytes, same digest) and the layers' diff_ids.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import type { ImageConfig, Index, Manifest } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, skopeoFlags, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture, skopeoRawManifest } from '../harness/fixtures.ts';
import { runCli } from '../harness/cli.ts';

const skip = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
let client: RegistryClient;
const work = mkdtempSync(join(tmpdir(), 'slipway-transport-'));
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  client = new RegistryClient();
});
after(async () => {
  await client?.close();
  await reg?.stop();
});

const skopeo = (args: string[]) => execFileSync('skopeo', args, { maxBuffer: 64 << 20 });
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function copy(src: string, dst: string, extra: string[] = []): Promise<string> {
  const r = await runCli(['copy', '-q', ...extra, src, dst]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

test('registry → oci-archive → docker-archive → registry', { skip, timeout: 120_000 }, async () => {
  const f = await pushFixture(reg, 'multiarch', 'rt/src:1');
  const original = await skopeoRawManifest(reg, `${reg.host}/rt/src:1`);
  const index = JSON.parse(original.toString()) as Index;
  assert.ok(index.manifests.length >= 2);

  // docker://REF is the explicit registry form.
  assert.equal(await copy(`docker://${f.ref}`, `docker://${reg.host}/rt/explicit:1`), f.digest);

  // registry → oci-archive: the whole index, byte for byte; skopeo reads the same bytes back.
  const ociTar = join(work, 'image.oci.tar');
  assert.equal(await copy(f.ref, `oci-archive:${ociTar}:v1`), f.digest);
  assert.deepEqual(skopeo(['inspect', '--raw', `oci-archive:${ociTar}:v1`]), original);
  const listed = execFileSync('tar', ['-tf', ociTar], { encoding: 'utf8' }).split('\n');
  for (const m of index.manifests) assert.ok(listed.includes(`blobs/sha256/${m.digest.slice(7)}`), `${m.digest} is in the archive`);
  // … and unpacked, umoci reads it as a layout with that tag.
  const dir = join(work, 'unpacked');
  execFileSync('mkdir', ['-p', dir]);
  execFileSync('tar', ['-xf', ociTar, '-C', dir]);
  assert.match(execFileSync('umoci', ['ls', '--layout', dir], { encoding: 'utf8' }), /^v1$/m);

  // oci-archive → oci dir → registry: the same index digest again.
  assert.equal(await copy(`oci-archive:${ociTar}:v1`, `oci:${join(work, 'layout')}:v2`), f.digest);
  assert.equal(await copy(`oci:${join(work, 'layout')}:v2`, `${reg.host}/rt/again:1`), f.digest);
  assert.deepEqual(await skopeoRawManifest(reg, `${reg.host}/rt/again:1`), original);
  // An oci: destination is written whole: a second copy replaces the first tag.
  await copy(`oci-archive:${ociTar}:v1`, `oci:${join(work, 'layout')}:v3`);
  assert.equal(execFileSync('umoci', ['ls', '--layout', join(work, 'layout')], { encoding: 'utf8' }).trim(), 'v3');

  // oci-archive → docker-archive (one platform): the config keeps its bytes and digest.
  const arm = index.manifests.find((m) => m.platform?.architecture === 'arm64')!;
  const armManifest = JSON.parse((await client.getManifest(parseReference(`${f.ref.split(':1')[0]}@${arm.digest}`))).bytes.toString()) as Manifest;
  const dockerTar = join(work, 'image.docker.tar');
  assert.equal(await copy(`oci-archive:${ociTar}:v1`, `docker-archive:${dockerTar}:rt/app:1`, ['--platform', 'linux/arm64']), armManifest.config.digest);
  const config = skopeo(['inspect', '--config', '--raw', `docker-archive:${dockerTar}`]);
  assert.equal(sha(config), armManifest.config.digest);
  const archiveManifest = JSON.parse(execFileSync('tar', ['-xOf', dockerTar, 'manifest.json'], { encoding: 'utf8' })) as Array<{ RepoTags: string[]; Layers: string[] }>;
  assert.deepEqual(archiveManifest[0].RepoTags, ['rt/app:1']);
  const diffIDs = (JSON.parse(config.toString()) as ImageConfig).rootfs.diff_ids;
  for (const [i, l] of archiveManifest[0].Layers.entries()) assert.equal(sha(execFileSync('tar', ['-xOf', dockerTar, l], { maxBuffer: 64 << 20 })), diffIDs[i], `layer ${i} is its diff_id`);

  // docker-archive → registry: a new manifest (the archive has none), the same config and diff_ids.
  const back = await copy(`docker-archive:${dockerTar}`, `${reg.host}/rt/back:1`);
  const pushed = JSON.parse((await skopeoRawManifest(reg, `${reg.host}/rt/back:1`)).toString()) as Manifest;
  assert.equal(sha(await skopeoRawManifest(reg, `${reg.host}/rt/back:1`)), back);
  assert.equal(pushed.config.digest, armManifest.config.digest);
  assert.deepEqual(skopeo(['inspect', '--config', '--raw', ...skopeoFlags(reg), `docker://${reg.host}/rt/back:1`]), config);
  for (const [i, l] of pushed.layers.entries()) {
    const blob = await client.fetchBlobBytes(parseReference(`${reg.host}/rt/back:1`), l);
    assert.equal(sha(gunzipSync(blob)), diffIDs[i], `pushed layer ${i} uncompresses to its diff_id`);
  }
  // A docker archive written by skopeo (uncompressed layers) reads the same way.
  const skopeoTar = join(work, 'skopeo.docker.tar');
  skopeo(['copy', '--insecure-policy', ...skopeoFlags(reg, 'src'), `docker://${reg.host}/rt/back:1`, `docker-archive:${skopeoTar}:rt/app:2`]);
  await copy(`docker-archive:${skopeoTar}:rt/app:2`, `${reg.host}/rt/skopeo:1`);
  assert.equal((JSON.parse((await skopeoRawManifest(reg, `${reg.host}/rt/skopeo:1`)).toString()) as Manifest).config.digest, armManifest.config.digest);
  assert.ok(readFileSync(skopeoTar).length > 0);
});

test('bad transport names and missing images are one clear error', { skip }, async () => {
  const noTag = await runCli(['copy', `oci-archive:${join(work, 'nothing.tar')}`, `oci:${join(work, 'x')}`]);
  assert.equal(noTag.code, 1);
  assert.match(noTag.stderr, /nothing\.tar: cannot read the archive/);
  const other = await runCli(['copy', 'containers-storage:foo', `oci:${join(work, 'x')}`]);
  assert.match(other.stderr, /the containers-storage: transport is not supported/);
  const ociTar = join(work, 'image.oci.tar');
  const wrongTag = await runCli(['copy', `oci-archive:${ociTar}:nope`, `oci:${join(work, 'x')}`]);
  assert.match(wrongTag.stderr, /no image tagged "nope" \(tags: v1\)/);
});
