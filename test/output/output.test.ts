import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { MediaType, jsonBytes, sha256, type Platform } from '../../src/oci/index.ts';
import { UserError } from '../../src/errors.ts';
import { writeDockerArchive, writeOciLayout, type BuiltImages, type PlatformImage } from '../../src/output/index.ts';
import { parseTagName } from '../../src/output/names.ts';

function has(tool: string): boolean {
  return spawnSync(tool, ['--version'], { stdio: 'ignore' }).status === 0;
}

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A small image made by hand: gzip layers, config with diff_ids, an OCI manifest. */
async function makeImage(dir: string, platform: Platform, layerFiles: Array<Record<string, string>>): Promise<PlatformImage & { diffIDs: string[] }> {
  const layers = [];
  const diffIDs = [];
  for (const files of layerFiles) {
    const raw = await tarOf(files);
    const gz = gzipSync(raw);
    const digest = sha256(gz);
    const path = join(dir, digest.slice(7));
    writeFileSync(path, gz);
    layers.push({ descriptor: { mediaType: MediaType.ociLayerGzip, digest, size: gz.length }, path });
    diffIDs.push(sha256(raw));
  }
  const config = jsonBytes({
    architecture: platform.architecture, os: platform.os, config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] },
    rootfs: { type: 'layers', diff_ids: diffIDs }, history: layerFiles.map(() => ({ created_by: 'test' })),
  });
  const manifest = jsonBytes({
    schemaVersion: 2, mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length },
    layers: layers.map((l) => l.descriptor),
  });
  return { platform, manifest: { bytes: manifest, digest: sha256(manifest), mediaType: MediaType.ociManifest }, config: { bytes: config, digest: sha256(config) }, layers, diffIDs };
}

function tempDir(t: { after(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'slipway-out-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

async function twoPlatforms(dir: string): Promise<BuiltImages & { images: Array<PlatformImage & { diffIDs: string[] }> }> {
  const a = await makeImage(dir, amd64, [{ 'etc/os': 'amd64\n', 'bin/x': 'x' }, { 'app/main': 'hello\n' }]);
  const b = await makeImage(dir, arm64, [{ 'etc/os': 'arm64\n' }, { 'app/main': 'hello\n' }]);
  const index = jsonBytes({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [a, b].map((i) => ({ mediaType: i.manifest.mediaType, digest: i.manifest.digest, size: i.manifest.bytes.length, platform: i.platform })) });
  return { images: [a, b], index: { bytes: index, digest: sha256(index), mediaType: MediaType.ociIndex }, tags: ['docker.io/library/app:1.0', 'ghcr.io/org/app:edge'] };
}

test('image names: docker defaults, familiar form, bad names rejected', () => {
  assert.deepEqual(parseTagName('app'), { repository: 'docker.io/library/app', tag: 'latest' });
  assert.deepEqual(parseTagName('org/app:1'), { repository: 'docker.io/org/app', tag: '1' });
  assert.deepEqual(parseTagName('localhost:5000/app:v2'), { repository: 'localhost:5000/app', tag: 'v2' });
  assert.throws(() => parseTagName('App:1'), UserError);
  assert.throws(() => parseTagName('app@sha256:' + 'a'.repeat(64)), /digest reference is not a tag/);
});

test('OCI layout directory: index.json names as buildx, skopeo and umoci read it', async (t) => {
  const dir = tempDir(t);
  const built = await twoPlatforms(dir);
  const dest = join(dir, 'layout');
  const r = await writeOciLayout({ ...built, dest, tar: false });
  assert.equal(r.digest, built.index!.digest);
  const index = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'));
  assert.deepEqual(index.manifests.map((m: { annotations: unknown }) => m.annotations), [
    { 'io.containerd.image.name': 'docker.io/library/app:1.0', 'org.opencontainers.image.ref.name': '1.0' },
    { 'io.containerd.image.name': 'ghcr.io/org/app:edge', 'org.opencontainers.image.ref.name': 'edge' },
  ]);
  assert.deepEqual(JSON.parse(readFileSync(join(dest, 'oci-layout'), 'utf8')), { imageLayoutVersion: '1.0.0' });
  // 1 index + 2 manifests + 2 configs + 3 distinct layers (the app layer is shared)
  assert.equal(readdirSync(join(dest, 'blobs/sha256')).length, 8);
  if (!has('skopeo')) return t.skip('skopeo is not installed (apt-get install skopeo)');
  for (const [arch, img] of [['amd64', built.images[0]], ['arm64', built.images[1]]] as const) {
    const info = JSON.parse(execFileSync('skopeo', ['--override-arch', arch, 'inspect', `oci:${dest}:1.0`], { encoding: 'utf8' }));
    assert.equal(info.Digest, built.index!.digest, 'skopeo reports the digest of the index the tag names');
    assert.equal(info.Architecture, arch);
    assert.deepEqual(info.Layers, img.layers.map((l) => l.descriptor.digest));
  }
  const raw = execFileSync('skopeo', ['inspect', '--raw', `oci:${dest}:edge`]);
  assert.equal(sha256(raw), built.index!.digest);
});

test('OCI layout: a single-platform layout unpacks with umoci', async (t) => {
  if (!has('umoci')) return t.skip('umoci is not installed (apt-get install umoci)');
  const dir = tempDir(t);
  const img = await makeImage(dir, amd64, [{ 'etc/os': 'base\n', 'bin/x': 'x' }, { 'etc/os': 'over\n', 'app/main': 'hello\n' }]);
  const dest = join(dir, 'layout');
  await writeOciLayout({ images: [img], tags: ['app:1.0'], dest, tar: false });
  const index = JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'));
  assert.equal(index.manifests[0].digest, img.manifest.digest);
  assert.deepEqual(index.manifests[0].platform, amd64);
  execFileSync('umoci', ['unpack', '--image', `${dest}:1.0`, join(dir, 'bundle')], { stdio: 'pipe' });
  assert.equal(readFileSync(join(dir, 'bundle/rootfs/etc/os'), 'utf8'), 'over\n');
  assert.equal(readFileSync(join(dir, 'bundle/rootfs/app/main'), 'utf8'), 'hello\n');
  assert.equal(readFileSync(join(dir, 'bundle/rootfs/bin/x'), 'utf8'), 'x');
});

test('OCI layout tar: deterministic bytes, sorted entries with numeric owners; skopeo reads it', async (t) => {
  const dir = tempDir(t);
  const built = await twoPlatforms(dir);
  const a = join(dir, 'a.tar');
  const b = join(dir, 'b.tar');
  await writeOciLayout({ ...built, dest: a, tar: true, sourceDateEpoch: 1700000000 });
  await writeOciLayout({ ...built, dest: b, tar: true, sourceDateEpoch: 1700000000 });
  assert.equal(sha256(readFileSync(a)), sha256(readFileSync(b)));
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvf', a], { encoding: 'utf8', env: { TZ: 'UTC' } }).trim().split('\n');
  const names = listing.map((l) => l.split(/\s+/).pop()!);
  assert.deepEqual(names.slice(0, 3), ['blobs/', 'blobs/sha256/', `blobs/sha256/${[...names].filter((n) => n.startsWith('blobs/sha256/') && n.length > 14).sort()[0].slice(13)}`]);
  assert.deepEqual(names, [...names].sort());
  assert.ok(names.includes('index.json') && names.includes('oci-layout'));
  for (const l of listing) assert.match(l, /^[d-]rw[-x]r-[-x]r-[-x] 0\/0 .* 2023-11-14 22:13:20 /);
  if (!has('skopeo')) return t.skip('skopeo is not installed');
  const info = JSON.parse(execFileSync('skopeo', ['--override-arch', 'arm64', 'inspect', `oci-archive:${a}:1.0`], { encoding: 'utf8' }));
  assert.equal(info.Digest, built.index!.digest);
  assert.deepEqual(info.Layers, built.images[1].layers.map((l) => l.descriptor.digest));
  const config = JSON.parse(execFileSync('skopeo', ['--override-arch', 'arm64', 'inspect', '--config', '--raw', `oci-archive:${a}:edge`], { encoding: 'utf8' }));
  assert.deepEqual(config.rootfs.diff_ids, built.images[1].diffIDs);
});

test('writers are atomic: a bad layer leaves no destination and no temp files', async (t) => {
  const dir = tempDir(t);
  const built = await twoPlatforms(dir);
  writeFileSync(built.images[1].layers[0].path, 'corrupted');
  const out = join(dir, 'out');
  await assert.rejects(writeOciLayout({ ...built, dest: join(out, 'x.tar'), tar: true }), /content does not match|bytes, expected/);
  await assert.rejects(writeOciLayout({ ...built, dest: join(out, 'layout'), tar: false }), /content does not match|bytes, expected/);
  await assert.rejects(writeDockerArchive({ ...built, platform: arm64, dest: join(out, 'd.tar') }));
  assert.deepEqual(readdirSync(out), []);
  // an existing layout is only replaced by a complete one
  const goodDir = join(dir, 'good');
  execFileSync('mkdir', [goodDir]);
  const good = await twoPlatforms(goodDir);
  await writeOciLayout({ ...good, images: [good.images[0]], index: undefined, dest: join(out, 'layout'), tar: false });
  await assert.rejects(writeOciLayout({ ...built, dest: join(out, 'layout'), tar: false }));
  assert.equal(JSON.parse(readFileSync(join(out, 'layout/index.json'), 'utf8')).manifests[0].digest, good.images[0].manifest.digest);
  assert.deepEqual(readdirSync(out), ['layout']);
  await assert.rejects(writeOciLayout({ ...good, tags: ['Bad Name'], dest: join(out, 'n.tar'), tar: true }), UserError);
  assert.equal(existsSync(join(out, 'n.tar')), false);
});

test('docker archive: docker-load layout that skopeo reads and copies with the same config and diffIDs', async (t) => {
  const dir = tempDir(t);
  const built = await twoPlatforms(dir);
  await assert.rejects(writeDockerArchive({ ...built, dest: join(dir, 'x.tar') }), (e: unknown) => e instanceof UserError && /holds one platform/.test(e.message));
  const dest = join(dir, 'app.tar');
  const img = built.images[1];
  await writeDockerArchive({ ...built, platform: arm64, dest });
  const x = join(dir, 'x');
  execFileSync('mkdir', [x]);
  execFileSync('tar', ['-xf', dest, '-C', x]);
  const manifest = JSON.parse(readFileSync(join(x, 'manifest.json'), 'utf8'));
  assert.deepEqual(manifest[0].RepoTags, ['app:1.0', 'ghcr.io/org/app:edge']);
  assert.equal(manifest[0].Config, `${img.config.digest.slice(7)}.json`);
  const layerTars = manifest[0].Layers.map((l: string) => readFileSync(join(x, l)));
  assert.deepEqual(layerTars.map((b: Buffer) => sha256(b)), img.diffIDs, 'layers stored uncompressed, one per diffID');
  const repos = JSON.parse(readFileSync(join(x, 'repositories'), 'utf8'));
  assert.equal(repos.app['1.0'], manifest[0].Layers[1].split('/')[0]);
  if (!has('skopeo')) return t.skip('skopeo is not installed');
  const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${dest}`], { encoding: 'utf8' }));
  assert.equal(info.Architecture, 'arm64');
  assert.deepEqual(info.Layers, img.diffIDs);
  execFileSync('skopeo', ['copy', `docker-archive:${dest}`, `oci:${join(dir, 'copied')}:c`], { stdio: 'pipe' });
  const idx = JSON.parse(readFileSync(join(dir, 'copied/index.json'), 'utf8'));
  const m = JSON.parse(readFileSync(join(dir, 'copied/blobs', idx.manifests[0].digest.replace(':', '/')), 'utf8'));
  const copiedLayers = m.layers.map((l: { digest: string }) => gunzipSync(readFileSync(join(dir, 'copied/blobs', l.digest.replace(':', '/')))));
  assert.deepEqual(copiedLayers.map((b: Buffer) => sha256(b)), img.diffIDs, 'skopeo read exactly the layer tars we wrote');
  const cfg = JSON.parse(readFileSync(join(dir, 'copied/blobs', m.config.digest.replace(':', '/')), 'utf8'));
  assert.deepEqual(cfg.rootfs.diff_ids, img.diffIDs);
  assert.deepEqual(cfg.config, JSON.parse(Buffer.from(img.config.bytes).toString()).config);
  // deterministic too
  await writeDockerArchive({ ...built, platform: arm64, dest: join(dir, 'again.tar') });
  assert.equal(sha256(readFileSync(join(dir, 'again.tar'))), sha256(readFileSync(dest)));
});

test('docker archive: an uncompressed layer is copied as is; a diffID mismatch is refused', async (t) => {
  const dir = tempDir(t);
  const raw = await tarOf({ 'a.txt': 'a' });
  const path = join(dir, 'layer.tar');
  writeFileSync(path, raw);
  const mk = (diffID: string) => {
    const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffID] } });
    const manifest = jsonBytes({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig, digest: sha256(config), size: config.length }, layers: [] });
    return { platform: amd64, manifest: { bytes: manifest, digest: sha256(manifest), mediaType: MediaType.ociManifest }, config: { bytes: config, digest: sha256(config) }, layers: [{ descriptor: { mediaType: MediaType.ociLayer, digest: sha256(raw), size: raw.length }, path }] };
  };
  await writeDockerArchive({ images: [mk(sha256(raw))], dest: join(dir, 'ok.tar') });
  if (has('skopeo')) {
    const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${join(dir, 'ok.tar')}`], { encoding: 'utf8' }));
    assert.deepEqual(info.Layers, [sha256(raw)]);
    assert.deepEqual(info.RepoTags, []);
  }
  await assert.rejects(writeDockerArchive({ images: [mk(sha256('other'))], dest: join(dir, 'bad.tar') }), /uncompresses to .* but the config says/);
  assert.equal(existsSync(join(dir, 'bad.tar')), false);
});
