// `slipway mutate` and `slipway append` against the real registry, over the multi-platform fixture skopeo pushed: every
// platform's config changes as asked and nothing else; layers are the base's (mounted, the
// registry's log shows no blob upload but the new configs); the base's annotations stay.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { RegistryClient, parseReference } from '../../src/registry/index.ts';
import { editConfig } from '../../src/mutate/index.ts';
import { sha256, type ImageConfig, type Index, type Manifest } from '../../src/oci/index.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { runCli } from '../harness/cli.ts';

const skip = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
let client: RegistryClient;
before(async () => {
  if (skip) return;
  reg = await startRegistry();
  client = new RegistryClient();
  await pushFixture(reg, 'multiarch', 'base/busybox:1');
  // The base gets annotations of its own (index and manifests), as a base from a real build has.
  const idx = await client.getManifest(parseReference(`${reg.host}/base/busybox:1`));
  const index = JSON.parse(idx.bytes.toString()) as Index;
  for (const d of index.manifests) {
    const m = await client.getManifest(parseReference(`${reg.host}/base/busybox@${d.digest}`));
    const annotated = Buffer.from(JSON.stringify({ ...JSON.parse(m.bytes.toString()), annotations: { 'org.example.base': d.platform!.architecture } }));
    const digest = await client.putManifest(parseReference(`${reg.host}/base/busybox:${d.platform!.architecture}`), annotated, m.mediaType);
    Object.assign(d, { digest, size: annotated.length });
  }
  await client.putManifest(parseReference(`${reg.host}/base/busybox:annotated`), Buffer.from(JSON.stringify({ ...index, annotations: { 'org.example.index': 'kept' } })), idx.mediaType);
});
after(async () => {
  await client?.close();
  await reg?.stop();
});

const cli = (...argv: string[]) => runCli(argv);

async function image(ref: string): Promise<{ index: Index; platforms: Array<{ manifest: Manifest; config: ImageConfig }> }> {
  const r = parseReference(ref);
  const index = JSON.parse((await client.getManifest(r)).bytes.toString()) as Index;
  const platforms = [];
  for (const d of index.manifests) {
    const manifest = JSON.parse((await client.getManifest(parseReference(`${r.registry}/${r.repository}@${d.digest}`))).bytes.toString()) as Manifest;
    const config = JSON.parse((await client.fetchBlobBytes(r, manifest.config)).toString()) as ImageConfig;
    platforms.push({ manifest, config });
  }
  return { index, platforms };
}

test('mutate: every platform gets the new config fields, layers and annotations stay, no layer moves', { skip }, async () => {
  const base = await image(`${reg.host}/base/busybox:annotated`);
  reg.clearLog();
  const r = await cli('mutate', `${reg.host}/base/busybox:annotated`, '-t', `${reg.host}/app/mutated:1`,
    '--env', 'MODE=prod', '--env', 'PATH-', '--entrypoint', '["/bin/sh","-c"]', '--cmd', 'echo,hi', '--workdir', '/srv', '--user', '1000:1000',
    '--label', 'org.opencontainers.image.title=app', '--annotation', 'org.example.new=1', '--exposed-ports', '8080', '--exposed-ports', '53/udp');
  assert.equal(r.code, 0, r.stderr);
  const got = await image(`${reg.host}/app/mutated:1`);
  assert.equal(r.stdout.trim().startsWith('sha256:'), true);
  assert.deepEqual(got.index.annotations, { 'org.example.index': 'kept', 'org.example.new': '1' });
  assert.deepEqual(got.index.manifests.map((d) => d.platform), base.index.manifests.map((d) => d.platform));
  for (let i = 0; i < base.platforms.length; i++) {
    const [b, g] = [base.platforms[i], got.platforms[i]];
    assert.deepEqual(g.manifest.layers, b.manifest.layers, 'the same layers');
    assert.deepEqual(g.manifest.annotations, { ...b.manifest.annotations, 'org.example.new': '1' });
    assert.deepEqual(g.config.rootfs, b.config.rootfs);
    assert.deepEqual(g.config.history, b.config.history);
    assert.equal(g.config.architecture, b.config.architecture);
    const c = g.config.config!;
    assert.deepEqual(c.Env, [...(b.config.config?.Env ?? []).filter((e) => !e.startsWith('PATH=')), 'MODE=prod']);
    assert.deepEqual(c.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(c.Cmd, ['echo', 'hi']);
    assert.equal(c.WorkingDir, '/srv');
    assert.equal(c.User, '1000:1000');
    assert.deepEqual(c.Labels, { ...(b.config.config?.Labels ?? {}), 'org.opencontainers.image.title': 'app' });
    assert.deepEqual(c.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  }
  const log = await reg.settledLog();
  const uploads = log.filter((l) => l.path.startsWith('/v2/app/mutated/blobs/uploads') && l.method === 'PUT');
  assert.equal(uploads.length, base.platforms.length, 'one upload per platform: its new config, no layer');
  assert.equal(log.filter((l) => l.method === 'GET' && /\/blobs\/sha256:/.test(l.path) && base.platforms.some((p) => p.manifest.layers.some((x) => l.path.endsWith(x.digest)))).length, 0, 'no layer downloaded');
});

test('mutate edits: unset with KEY- and an empty value; bad input is one clear error', { skip }, () => {
  const cfg: ImageConfig = { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] }, config: { Env: ['A=1', 'B=2'], Cmd: ['sh'], Labels: { x: '1' }, ExposedPorts: { '80/tcp': {} } } };
  const out = editConfig(cfg, { env: ['A-', 'C=3'], cmd: '', labels: ['x-'], exposedPorts: ['80-'] });
  assert.deepEqual(out.config, { Env: ['B=2', 'C=3'], Labels: {}, ExposedPorts: {} });
  assert.deepEqual(cfg.config?.Env, ['A=1', 'B=2'], 'the input is not changed');
  assert.throws(() => editConfig(cfg, { exposedPorts: ['http'] }), /--exposed-ports "http": expected PORT or PORT\/tcp\|udp\|sctp/);
  assert.throws(() => editConfig(cfg, { env: ['=x'] }), /--env "=x": expected KEY=VALUE/);
  assert.throws(() => editConfig(cfg, { entrypoint: '["a",1]' }), /--entrypoint \["a",1\]: expected a JSON array of strings/);
});

test('append: a directory and a tar.gz on every platform of a multi-platform base; base blobs mounted, never uploaded or downloaded', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-append-'));
  mkdirSync(join(dir, 'tree/etc'), { recursive: true });
  writeFileSync(join(dir, 'tree/etc/app.conf'), 'port=8080\n');
  writeFileSync(join(dir, 'extra.txt'), 'extra\n');
  execFileSync('tar', ['-czf', join(dir, 'extra.tar.gz'), '-C', dir, 'extra.txt']);
  const base = await image(`${reg.host}/base/busybox:annotated`);
  reg.clearLog();
  const r = await cli('append', '-b', `${reg.host}/base/busybox:annotated`, '-f', join(dir, 'tree'), '-f', join(dir, 'extra.tar.gz'), '-t', `${reg.host}/app/appended:1`);
  assert.equal(r.code, 0, r.stderr);
  const got = await image(`${reg.host}/app/appended:1`);
  assert.equal(got.index.manifests.length, base.index.manifests.length);
  assert.deepEqual(got.index.annotations, { 'org.example.index': 'kept' });
  const gz = readFileSync(join(dir, 'extra.tar.gz'));
  for (let i = 0; i < base.platforms.length; i++) {
    const [b, g] = [base.platforms[i], got.platforms[i]];
    assert.deepEqual(g.manifest.layers.slice(0, b.manifest.layers.length), b.manifest.layers);
    assert.equal(g.manifest.layers.length, b.manifest.layers.length + 2);
    assert.deepEqual(g.manifest.annotations, b.manifest.annotations);
    assert.equal(g.manifest.layers.at(-1)!.digest, sha256(gz), 'a tar.gz goes up as it is');
    assert.deepEqual(g.config.rootfs.diff_ids, [...b.config.rootfs.diff_ids, ...g.config.rootfs.diff_ids.slice(-2)]);
    assert.equal(g.config.rootfs.diff_ids.at(-1), sha256(gunzipSync(gz)));
    assert.deepEqual(g.config.config, b.config.config, 'the container config is the base\'s');
  }
  // The directory layer holds the tree at the root.
  const dirLayer = got.platforms[0].manifest.layers.at(-2)!;
  const tar = gunzipSync(await client.fetchBlobBytes(parseReference(`${reg.host}/app/appended:1`), dirLayer));
  assert.ok(tar.includes(Buffer.from('etc/app.conf')) && tar.includes(Buffer.from('port=8080')));
  const log = await reg.settledLog();
  const puts = log.filter((l) => l.path.startsWith('/v2/app/appended/blobs/uploads') && l.method === 'PUT');
  assert.equal(puts.length, 2 + base.platforms.length, 'the two new layers once, a config per platform: no base blob');
  const baseLayers = new Set(base.platforms.flatMap((p) => p.manifest.layers.map((x) => x.digest)));
  assert.equal(log.filter((l) => l.method === 'GET' && [...baseLayers].some((d) => l.path.endsWith(d))).length, 0, 'no base layer downloaded');
  const bad = await cli('append', '-b', `${reg.host}/base/busybox:1`, '-f', join(dir, 'extra.txt'), '-t', `${reg.host}/app/appended:2`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /-f .*extra\.txt: not a tar archive \(no ustar header\)/);
});

test('append -f SRC:/DEST: a file and a directory placed at their destinations, parents made', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-append-dest-'));
  writeFileSync(join(dir, 'app'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  mkdirSync(join(dir, 'conf'));
  writeFileSync(join(dir, 'conf/a.ini'), 'a=1\n', { mode: 0o640 });
  const r = await cli('append', '-b', `${reg.host}/base/busybox:1`, '-f', `${join(dir, 'app')}:/usr/local/bin/app`, '-f', `${join(dir, 'conf')}:/etc/app/`, '-t', `${reg.host}/app/placed:1`);
  assert.equal(r.code, 0, r.stderr);
  const got = await image(`${reg.host}/app/placed:1`);
  const [fileLayer, dirLayer] = got.platforms[0].manifest.layers.slice(-2);
  const tarList = async (layer: typeof fileLayer) => {
    const file = join(dir, `${layer.digest.slice(7)}.tar.gz`);
    writeFileSync(file, await client.fetchBlobBytes(parseReference(`${reg.host}/app/placed:1`), layer));
    return execFileSync('tar', ['-tvzf', file, '--numeric-owner'], { encoding: 'utf8' }).trim().split('\n').map((l) => { const f = l.split(/\s+/); return `${f[0]} ${f[1]} ${f.at(-1)}`; });
  };
  assert.deepEqual(await tarList(fileLayer), ['drwxr-xr-x 0/0 usr/', 'drwxr-xr-x 0/0 usr/local/', 'drwxr-xr-x 0/0 usr/local/bin/', '-rwxr-xr-x 0/0 usr/local/bin/app']);
  const confMode = execFileSync('stat', ['-c', '%A', join(dir, 'conf')], { encoding: 'utf8' }).trim();
  assert.deepEqual(await tarList(dirLayer), ['drwxr-xr-x 0/0 etc/', `${confMode} 0/0 etc/app/`, '-rw-r----- 0/0 etc/app/a.ini']);
  const bad = await cli('append', '-b', `${reg.host}/base/busybox:1`, '-f', `${join(dir, 'nope')}:/x`, '-t', `${reg.host}/app/placed:2`);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /-f .*nope:\/x: .*nope: no such file or directory/);
});

test('append and mutate read and write the file transports: oci-archive base, oci and registry results', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-mutate-files-'));
  const base = join(dir, 'base.oci.tar');
  assert.equal((await cli('copy', `${reg.host}/base/busybox:annotated`, `oci-archive:${base}:1`)).code, 0);
  writeFileSync(join(dir, 'hello.txt'), 'hello\n');
  const appended = await cli('append', '-b', `oci-archive:${base}:1`, '-f', `${join(dir, 'hello.txt')}:/hello.txt`, '-t', `${reg.host}/app/from-file:1`);
  assert.equal(appended.code, 0, appended.stderr);
  const fromRegistry = await cli('append', '-b', `${reg.host}/base/busybox:annotated`, '-f', `${join(dir, 'hello.txt')}:/hello.txt`, '-t', `${reg.host}/app/from-reg:1`);
  assert.equal(appended.stdout, fromRegistry.stdout, 'the same base gives the same image whichever transport it came from');
  const layout = join(dir, 'layout');
  const mutated = await cli('mutate', `${reg.host}/app/from-file:1`, '--env', 'MODE=files', '-t', `oci:${layout}:m1`);
  assert.equal(mutated.code, 0, mutated.stderr);
  assert.match(execFileSync('umoci', ['ls', '--layout', layout], { encoding: 'utf8' }), /^m1$/m);
  const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', '--override-arch', 'arm64', `oci:${layout}:m1`], { encoding: 'utf8' })) as ImageConfig;
  assert.ok(config.config?.Env?.includes('MODE=files'));
  assert.equal(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:m1`]).length > 0, true);
  assert.equal(sha256(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:m1`])), mutated.stdout.trim());
  // One platform: a docker archive base and a docker archive result, read back by skopeo.
  const amdTar = join(dir, 'amd.docker.tar');
  assert.equal((await cli('copy', '--platform', 'linux/amd64', `${reg.host}/base/busybox:1`, `docker-archive:${amdTar}:base:1`)).code, 0);
  const outTar = join(dir, 'out.docker.tar');
  const onTar = await cli('append', '-b', `docker-archive:${amdTar}`, '-f', `${join(dir, 'hello.txt')}:/hello.txt`, '-t', `docker-archive:${outTar}:app:2`);
  assert.equal(onTar.code, 0, onTar.stderr);
  const outConfig = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', `docker-archive:${outTar}`], { encoding: 'utf8' })) as ImageConfig;
  const baseConfig = JSON.parse(execFileSync('skopeo', ['inspect', '--config', '--raw', `docker-archive:${amdTar}`], { encoding: 'utf8' })) as ImageConfig;
  assert.deepEqual(outConfig.rootfs.diff_ids.slice(0, -1), baseConfig.rootfs.diff_ids);
  assert.equal(outConfig.rootfs.diff_ids.length, baseConfig.rootfs.diff_ids.length + 1);
  assert.match(execFileSync('tar', ['-xOf', outTar, 'manifest.json'], { encoding: 'utf8' }), /"RepoTags":\["app:2"\]/);
  const single = await cli('mutate', `oci:${layout}:m1`, '--user', '1000', '-t', `docker-archive:${join(dir, 'x.tar')}:app:1`);
  assert.equal(single.code, 1);
  assert.match(single.stderr, /holds one platform, but oci:.*:m1 is a multi-platform index/);
});
