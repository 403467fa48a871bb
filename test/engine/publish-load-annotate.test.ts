// --load into a real Docker daemon (Debian docker.io, started here), and annotations at each of
// buildx's levels, read back with skopeo from the real registry and from an OCI layout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { dockerClient, dockerMissing, ensurePackages, startDocker, stopDocker, type DockerDaemon } from '../harness/docker.ts';
import { buildContext, makeContext, run } from './helpers.ts';
import { makeBuildRequest } from '../../src/request/index.ts';

const missing = registryMissing() ?? fixturesMissing();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- skopeo's JSON, checked field by field
type Json = Record<string, any>;

async function raw(ref: string): Promise<Json> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { maxBuffer: 16 << 20 });
  return JSON.parse(stdout) as Json;
}

/** Runs `work` with PATH holding only `commands` (name → binary) and with `env` set (undefined: unset). */
async function withCommands<T>(commands: Record<string, string>, env: Record<string, string | undefined>, work: () => Promise<T>): Promise<T> {
  const names = ['PATH', ...Object.keys(env)];
  const saved = new Map(names.map((n) => [n, process.env[n]]));
  const bin = mkdtempSync(join(tmpdir(), 'slipway-bin-'));
  for (const [name, target] of Object.entries(commands)) symlinkSync(target, join(bin, name));
  const set = (n: string, v: string | undefined) => { if (v === undefined) delete process.env[n]; else process.env[n] = v; };
  set('PATH', bin);
  for (const [n, v] of Object.entries(env)) set(n, v);
  try { return await work(); } finally {
    for (const [n, v] of saved) set(n, v);
  }
}

/** Runs `work` with `docker` on PATH meaning the docker.io client, talking to `host`. */
function withDockerEnv<T>(host: string | undefined, work: () => Promise<T>): Promise<T> {
  return withCommands({ docker: dockerClient }, { DOCKER_HOST: host }, work);
}

/** Podman in storage of its own under `dir`, running containers with runc and no cgroup controllers. */
function podmanEnv(dir: string): NodeJS.ProcessEnv {
  writeFileSync(join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\nrunroot = "${dir}/run"\ngraphroot = "${dir}/graph"\n`);
  // Root podman raises rlimits by default, which this container may not; no cgroup manager either.
  writeFileSync(join(dir, 'containers.conf'), '[containers]\ndefault_ulimits = []\nnetns = "none"\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\nruntime = "runc"\n');
  return { CONTAINERS_STORAGE_CONF: join(dir, 'storage.conf'), CONTAINERS_CONF: join(dir, 'containers.conf') };
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

  describe('--load where podman is what is installed', { skip: process.getuid?.() !== 0 ? 'podman storage needs root here' : ensurePackages(['podman']) }, () => {
    test('no docker CLI: the image goes into podman\'s storage; podman image inspect shows its config, podman run runs it', async () => {
      const env = podmanEnv(mkdtempSync(join(tmpdir(), 'slipway-podman-')));
      const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY hello.txt /hello.txt\nENV GREETING=hi\nCMD ["cat", "/hello.txt"]\n`, 'hello.txt': 'hello from podman\n' });
      const { result, log } = await withCommands({ podman: '/usr/bin/podman' }, { ...env, DOCKER_HOST: undefined }, () => buildContext(ctx, { tags: ['slipway-load/podman:1'], load: true, platforms: ['linux/amd64'] }));
      assert.ok(log.some((l) => /loading into podman \(\d+\.\d+/.test(l)), log.join('\n'));
      assert.deepEqual(result.loaded, ['localhost/slipway-load/podman:1']);
      const podman = (args: string[]) => run('podman', args, { env: { ...process.env, ...env } });
      const [inspect] = JSON.parse((await podman(['image', 'inspect', 'slipway-load/podman:1'])).stdout) as Array<{ Id: string; Config: { Env: string[]; Cmd: string[] } }>;
      assert.equal(`sha256:${inspect.Id}`, result.imageId);
      assert.ok(inspect.Config.Env.includes('GREETING=hi'));
      assert.deepEqual(inspect.Config.Cmd, ['cat', '/hello.txt']);
      assert.equal((await podman(['run', '--rm', 'slipway-load/podman:1'])).stdout, 'hello from podman\n');
    });

    test('neither docker nor podman on PATH: one clear error before any step runs', async () => {
      const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY not-there.txt /x\n` });
      await assert.rejects(withCommands({}, {}, () => buildContext(ctx, { tags: ['x:1'], load: true })), /--load needs the docker or podman CLI on PATH, and neither is installed/);
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
