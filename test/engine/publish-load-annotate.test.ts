// --load into a real Docker daemon (Debian docker.io, started here), and annotations at each of
// buildx's levels, read back with skopeo from the real registry and from an OCI layout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { dockerClient, dockerMissing, startDocker, stopDocker, type DockerDaemon } from '../harness/docker.ts';
import { buildContext, makeContext, run } from './helpers.ts';
import { makeBuildRequest } from '../../src/request/index.ts';

const missing = registryMissing() ?? fixturesMissing();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- skopeo's JSON, checked field by field
type Json = Record<string, any>;

async function raw(ref: string): Promise<Json> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as Json;
}

/** Runs `work` with `docker` on PATH meaning the docker.io client, talking to `host`. */
async function withDockerEnv<T>(host: string | undefined, work: () => Promise<T>): Promise<T> {
  const saved = { PATH: process.env.PATH, DOCKER_HOST: process.env.DOCKER_HOST };
  const bin = mkdtempSync(join(tmpdir(), 'slipway-bin-'));
  symlinkSync(dockerClient, join(bin, 'docker'));
  process.env.PATH = `${bin}:/usr/bin:/bin`;
  if (host) process.env.DOCKER_HOST = host; else delete process.env.DOCKER_HOST;
  try { return await work(); } finally {
    process.env.PATH = saved.PATH;
    if (saved.DOCKER_HOST === undefined) delete process.env.DOCKER_HOST; else process.env.DOCKER_HOST = saved.DOCKER_HOST;
  }
}

describe('publishing: load and annotations', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
  });
  after(async () => { await reg?.stop(); await stopDocker(); });

  describe('--load', { skip: dockerMissing() }, () => {
    let d: DockerDaemon;
    before(async () => { d = await startDocker(); });

    test('loads the image into the Docker daemon: docker image inspect shows its config, docker run runs it', async () => {
      const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY hello.txt /hello.txt\nENV GREETING=hi\nCMD ["cat", "/hello.txt"]\n`, 'hello.txt': 'hello from slipway\n' });
      const { result } = await withDockerEnv(d.host, () => buildContext(ctx, { tags: ['slipway-load/app:1'], load: true, platforms: ['linux/amd64'] }));
      assert.deepEqual(result.loaded, ['slipway-load/app:1']);
      const [inspect] = JSON.parse(d.docker(['image', 'inspect', 'slipway-load/app:1'])) as Array<{ Id: string; Config: { Env: string[]; Cmd: string[] } }>;
      assert.equal(inspect.Id, result.imageId);
      assert.ok(inspect.Config.Env.includes('GREETING=hi'));
      assert.deepEqual(inspect.Config.Cmd, ['cat', '/hello.txt']);
      assert.equal(d.docker(['run', '--rm', '--network', 'none', 'slipway-load/app:1']), 'hello from slipway\n');
    });

    test('no daemon to load into: one clear error before any step runs', async () => {
      // The COPY would fail if any step ran: the error must be the daemon's, so it came first.
      const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY not-there.txt /x\n` });
      const gone = `unix://${join(mkdtempSync(join(tmpdir(), 'slipway-nodaemon-')), 'docker.sock')}`;
      await assert.rejects(withDockerEnv(gone, () => buildContext(ctx, { tags: ['x:1'], load: true })), /--load cannot reach a Docker daemon/);
    });
  });

  test('--load with two platforms is refused before the build, as buildx does', () => {
    const ctx = makeContext({ Dockerfile: 'FROM scratch\n' });
    assert.throws(() => makeBuildRequest({ context: '.', cwd: ctx, env: {}, load: true, platforms: ['linux/amd64', 'linux/arm64'] }), /--load holds one platform, but 2 were asked for/);
  });

  test('metadata-action style annotations land at manifest, index, manifest-descriptor and platform-qualified levels (skopeo inspect --raw)', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY a.txt /a.txt\n`, 'a.txt': 'a' });
    const tag = `${reg.host}/app/annotated:1`;
    await buildContext(ctx, {
      tags: [tag], push: true, platforms: ['linux/amd64', 'linux/arm64'], sourceDateEpoch: '0',
      annotations: [
        'org.opencontainers.image.title=app',
        'manifest:org.opencontainers.image.version=1.0',
        'index:org.opencontainers.image.description=the index',
        'manifest-descriptor:org.opencontainers.image.source=https://example.com/app',
        'manifest[linux/arm64]:com.example.arm=yes',
        'index,manifest:org.opencontainers.image.created=2024-01-31T12:00:00Z',
      ],
    });
    const index = await raw(tag);
    assert.deepEqual(index.annotations, { 'org.opencontainers.image.description': 'the index', 'org.opencontainers.image.created': '2024-01-31T12:00:00Z' });
    assert.equal(index.manifests.length, 2);
    for (const m of index.manifests) {
      assert.deepEqual(m.annotations, { 'org.opencontainers.image.source': 'https://example.com/app' });
      const manifest = await raw(`${reg.host}/app/annotated@${m.digest}`);
      const expected: Record<string, string> = {
        'org.opencontainers.image.title': 'app', 'org.opencontainers.image.version': '1.0', 'org.opencontainers.image.created': '2024-01-31T12:00:00Z',
        ...(m.platform.architecture === 'arm64' ? { 'com.example.arm': 'yes' } : {}),
      };
      assert.deepEqual(manifest.annotations, expected);
    }
  });

  test('index-descriptor annotations go on the OCI layout\'s index.json; a one-platform build with index annotations gets an index', async () => {
    const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a' });
    const out = join(ctx, 'layout');
    mkdirSync(out);
    const { result } = await buildContext(ctx, {
      outputs: [`type=oci,dest=${out},tar=false`], sourceDateEpoch: '0',
      annotations: ['index-descriptor:com.example.where=layout', 'index:com.example.level=index'],
    });
    const top = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
    assert.deepEqual(top.manifests[0].annotations, { 'com.example.where': 'layout' });
    assert.equal(top.manifests[0].mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(top.manifests[0].digest, result.digest);
    const inner = JSON.parse(readFileSync(join(out, 'blobs', ...result.digest.split(':')), 'utf8'));
    assert.deepEqual(inner.annotations, { 'com.example.level': 'index' });
  });

  test('bad annotations are one clear error: unknown level, a key outside the OCI predefined set, a created that is not RFC 3339', () => {
    const ctx = makeContext({ Dockerfile: 'FROM scratch\n' });
    const req = (a: string) => makeBuildRequest({ context: '.', cwd: ctx, env: {}, annotations: [a] });
    assert.throws(() => req('layer:foo=bar'), /unknown level "layer"/);
    assert.throws(() => req('org.opencontainers.image.colour=red'), /not one of the OCI image spec's predefined keys/);
    assert.throws(() => req('org.opencontainers.image.created=yesterday'), /RFC 3339/);
    assert.throws(() => req('=x'), /expected \[LEVEL:\]KEY=VALUE/);
  });
});
