// `slipway imagetools create` against the real registry, over fixture images skopeo pushed: the
// index checked field by field against the OCI image-index spec (schemaVersion 2, mediaType,
// manifests[] of mediaType/digest/size/platform, optional annotations), blobs mounted across
// repositories (the registry's log shows no upload), --append, --annotation, --dry-run.
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import { MediaType, normalizePlatform, type Index } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, skopeoFlags, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { runCli } from '../harness/cli.ts';

const skip = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
let client: RegistryClient;
let source: Index;
let v2s2: string;
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  client = new RegistryClient();
  await pushFixture(reg, 'multiarch', 'src/busybox:1');
  v2s2 = (await pushFixture(reg, 'v2s2', 'src/old:1')).ref;
  source = JSON.parse((await client.getManifest(parseReference(`${reg.host}/src/busybox:1`))).bytes.toString()) as Index;
});
after(async () => {
  await client?.close();
  await reg?.stop();
});

const cli = (...argv: string[]) => runCli(['imagetools', 'create', ...argv]);

async function indexAt(ref: string): Promise<{ index: Index; mediaType: string; digest: string; raw: string }> {
  const m = await client.getManifest(parseReference(ref));
  return { index: JSON.parse(m.bytes.toString()) as Index, mediaType: m.mediaType, digest: m.digest, raw: m.bytes.toString() };
}

test('platform manifests by digest from another repository: a spec-shaped index, blobs mounted, nothing uploaded', { skip }, async () => {
  const [amd, arm] = ['amd64', 'arm64'].map((a) => source.manifests.find((m) => m.platform?.architecture === a)!);
  reg.clearLog();
  const r = await cli('-t', `${reg.host}/dst/app:1`, '-t', `${reg.host}/dst/app:latest`, `${reg.host}/src/busybox@${arm.digest}`, `${reg.host}/src/busybox@${amd.digest}`);
  assert.equal(r.code, 0, r.stderr);
  const one = await indexAt(`${reg.host}/dst/app:1`);
  const latest = await indexAt(`${reg.host}/dst/app:latest`);
  assert.equal(r.stdout.trim(), one.digest);
  assert.equal(latest.digest, one.digest);
  // Field by field (image-spec image-index.md): no other top-level field than these three.
  assert.deepEqual(Object.keys(one.index).sort(), ['manifests', 'mediaType', 'schemaVersion']);
  assert.equal(one.index.schemaVersion, 2);
  assert.equal(one.index.mediaType, MediaType.ociIndex);
  assert.equal(one.mediaType, MediaType.ociIndex);
  // In the order given; the platform from each config, normalised (the fixture index's arm64/v8 is plain arm64).
  assert.deepEqual(one.index.manifests, [arm, amd].map((d) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size, platform: normalizePlatform(d.platform!) })));
  assert.deepEqual(one.index.manifests[0].platform, { os: 'linux', architecture: 'arm64' });
  for (const d of one.index.manifests) {
    const m = await client.getManifest(parseReference(`${reg.host}/dst/app@${d.digest}`));
    assert.equal(m.bytes.length, d.size, 'size is the manifest byte count');
    assert.equal(m.mediaType, d.mediaType);
  }
  const log = await reg.settledLog();
  const uploads = log.filter((l) => l.path.startsWith('/v2/dst/app/blobs/uploads') && (l.method === 'PATCH' || l.method === 'PUT'));
  assert.deepEqual(uploads, [], 'blobs are mounted, never uploaded');
  assert.ok(log.some((l) => l.method === 'POST' && l.path.startsWith('/v2/dst/app/blobs/uploads') && l.status === 201), 'mounted from src/busybox');
});

test('an index source keeps its descriptors as they are; a Docker-only source set gives a Docker manifest list', { skip }, async () => {
  const r = await cli('-t', `${reg.host}/dst/same:1`, `${reg.host}/src/busybox:1`);
  assert.equal(r.code, 0, r.stderr);
  const got = await indexAt(`${reg.host}/dst/same:1`);
  assert.deepEqual(got.index.manifests, source.manifests);
  const d = await cli('-t', `${reg.host}/src/old:list`, v2s2);
  assert.equal(d.code, 0, d.stderr);
  const list = await indexAt(`${reg.host}/src/old:list`);
  assert.equal(list.mediaType, MediaType.dockerManifestList);
  assert.equal(list.index.manifests[0].mediaType, MediaType.dockerManifest);
  assert.deepEqual(list.index.manifests[0].platform, { os: 'linux', architecture: 'amd64' });
});

test('--append, --annotation and --dry-run', { skip }, async () => {
  const [amd, arm] = ['amd64', 'arm64'].map((a) => source.manifests.find((m) => m.platform?.architecture === a)!);
  assert.equal((await cli('-t', `${reg.host}/src/busybox:grow`, `${reg.host}/src/busybox@${amd.digest}`)).code, 0);
  assert.equal((await cli('--append', '-t', `${reg.host}/src/busybox:grow`, `${reg.host}/src/busybox@${arm.digest}`)).code, 0);
  const grown = await indexAt(`${reg.host}/src/busybox:grow`);
  assert.deepEqual(grown.index.manifests.map((m) => m.digest), [amd.digest, arm.digest]);

  const a = await cli('--annotation', 'org.opencontainers.image.version=1.0', '--annotation', 'index:org.opencontainers.image.title=app', '-t', `${reg.host}/src/busybox:ann`, `${reg.host}/src/busybox:1`);
  assert.equal(a.code, 0, a.stderr);
  const ann = await indexAt(`${reg.host}/src/busybox:ann`);
  assert.deepEqual(ann.index.annotations, { 'org.opencontainers.image.version': '1.0', 'org.opencontainers.image.title': 'app' });
  const bad = await cli('--annotation', 'manifest:k=v', '-t', `${reg.host}/src/busybox:bad`, `${reg.host}/src/busybox:1`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /invalid --annotation "manifest:k=v": expected KEY=VALUE or index:KEY=VALUE/);

  const dry = await cli('--dry-run', '-t', `${reg.host}/src/busybox:dry`, `${reg.host}/src/busybox@${arm.digest}`);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal((JSON.parse(dry.stdout) as Index).manifests[0].digest, arm.digest);
  assert.equal(await client.headManifest(parseReference(`${reg.host}/src/busybox:dry`)), undefined, 'a dry run pushes nothing');
});

test('file sources: a docker archive and an OCI archive become platforms of one index, pushed into the target first', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-imagetools-files-'));
  const arm = source.manifests.find((m) => m.platform?.architecture === 'arm64')!;
  const dockerTar = join(dir, 'amd.docker.tar');
  const ociTar = join(dir, 'arm.oci.tar');
  assert.equal((await runCli(['copy', '--platform', 'linux/amd64', `${reg.host}/src/busybox:1`, `docker-archive:${dockerTar}:app:amd`])).code, 0);
  assert.equal((await runCli(['copy', `${reg.host}/src/busybox@${arm.digest}`, `oci-archive:${ociTar}:arm`])).code, 0);
  const dry = await cli('--dry-run', '-t', `${reg.host}/files/app:1`, `docker-archive:${dockerTar}`, `oci-archive:${ociTar}:arm`);
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal((await client.headManifest(parseReference(`${reg.host}/files/app:1`))), undefined, 'a dry run pushes nothing');
  const r = await cli('-t', `${reg.host}/files/app:1`, `docker-archive:${dockerTar}`, `oci-archive:${ociTar}:arm`);
  assert.equal(r.code, 0, r.stderr);
  const got = await indexAt(`${reg.host}/files/app:1`);
  assert.equal(got.digest, r.stdout.trim());
  assert.deepEqual(got.index.manifests.map((m) => `${m.platform!.os}/${m.platform!.architecture}`), ['linux/amd64', 'linux/arm64']);
  assert.equal(got.index.manifests[1].digest, arm.digest, 'the OCI archive keeps the manifest digest');
  assert.equal(got.index.manifests[0].mediaType, MediaType.dockerManifest, 'a docker archive becomes a Docker schema 2 manifest');
  // skopeo copies the whole index out of the target: every manifest and blob is there.
  execFileSync('skopeo', ['copy', '--all', '--insecure-policy', ...skopeoFlags(reg, 'src'), `docker://${reg.host}/files/app:1`, `oci:${join(dir, 'out')}:x`]);
});
