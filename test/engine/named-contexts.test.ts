// Named contexts (`--build-context NAME=VALUE`) through the real engine: a local directory (with its
// own .dockerignore), docker-image:// from a real registry, oci-layout:// of a skopeo-made layout,
// a git repository served by `git daemon`, and an http URL from a local server — each used by FROM,
// COPY --from and RUN --mount=from; a named context overrides a stage of its name; and the request
// errors (unknown scheme, missing directory, bad oci-layout tag) come before any step runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check } from '../../src/engine/index.ts';
import { makeBuildRequest, parseBuildContexts } from '../../src/request/index.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { freePort, registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { buildContext, makeContext, run, runMissing, unpackOci } from './helpers.ts';

const missing = registryMissing() ?? fixturesMissing();
const gitMissing = existsSync('/usr/lib/git-core/git-daemon') ? undefined : 'git daemon is not installed';

test('names are matched as BuildKit matches them; a later value for a name wins', () => {
  const dir = makeContext({ 'a.txt': 'a' });
  const got = parseBuildContexts(['docker.io/library/alpine:latest=docker-image://busybox', 'build=.', `build=${dir}`, 'ghcr.io/o/app:1=docker-image://ghcr.io/o/app:2'], dir);
  assert.deepEqual(got.map((c) => [c.name, c.source.kind]), [['alpine', 'image'], ['build', 'local'], ['ghcr.io/o/app:1', 'image']]);
  assert.deepEqual(parseBuildContexts(['src=https://example.com/r.git#main:app', 'f=https://example.com/ctx.tar.gz', 's=git@example.com:o/r'], dir).map((c) => c.source.kind), ['git', 'http', 'git']);
});

test('a stage a named context replaces is not checked: its warnings would be of steps that never run', async () => {
  const named = makeContext({ 'out.txt': 'x' });
  const ctx = makeContext({ Dockerfile: 'FROM scratch AS build\nCOPY $NOT_DEFINED /x\n\nFROM scratch\nCOPY --from=build /out.txt /\n' });
  const rules = async (buildContexts: string[]) => (await check(makeBuildRequest({ context: '.', cwd: ctx, env: {}, buildContexts }), {})).warnings.map((w) => w.rule);
  assert.ok((await rules([])).includes('UndefinedVar'), 'without the context the stage is checked');
  assert.deepEqual(await rules([`build=${named}`]), []);
});

test('bad --build-context values are one clear error each, before the build', () => {
  const dir = makeContext({ 'file.txt': 'x', 'layout/index.json': JSON.stringify({ schemaVersion: 2, manifests: [{ digest: 'sha256:' + 'a'.repeat(64), annotations: { 'org.opencontainers.image.ref.name': 'v1' } }] }) });
  const cases: Array<[string, RegExp]> = [
    ['base=foo://x', /--build-context base=foo:\/\/x: unknown scheme "foo:\/\/"/],
    ['base=./nope', /--build-context base=.\/nope: directory .*nope does not exist/],
    ['base=file.txt', /is not a directory/],
    ['base=oci-layout://layout:v2', /the OCI layout .*layout has no image tagged "v2"/],
    ['base=oci-layout://nolayout', /is no OCI image layout \(it has no index.json\)/],
    ['base=oci-layout://layout@sha256:1234', /is not a sha256 digest/],
    ['base=docker-image://Busybox', /docker-image:\/\/Busybox: .*lowercase/],
    ['Base=.', /invalid build context name "Base"/],
    ['base', /invalid build context "base": expected NAME=VALUE/],
  ];
  for (const [value, re] of cases) {
    assert.throws(() => parseBuildContexts([value], dir), (e: Error) => e.name === 'UserError' && re.test(e.message), value);
  }
  // The tag of a layout resolves to its digest in the request itself.
  assert.deepEqual(parseBuildContexts(['b=oci-layout://layout:v1'], dir)[0].source, { kind: 'oci-layout', dir: join(dir, 'layout'), digest: 'sha256:' + 'a'.repeat(64), tag: 'v1' });
  // makeBuildRequest applies them too (the CLI flag and the action input both go through it).
  const ctx = makeContext({ Dockerfile: 'FROM scratch\n' });
  assert.throws(() => makeBuildRequest({ context: '.', cwd: ctx, env: {}, buildContexts: ['x=ftp://h/x'] }), /unknown scheme "ftp:\/\/"/);
});

describe('named contexts in builds', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;
  let layout: string;
  let daemon: ChildProcess | undefined;
  let server: Server;
  let gitUrl = '';
  let httpUrl = '';
  let hits = 0;

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
    // An OCI layout made by skopeo (not by us): the multi-arch busybox under the tag `bb`.
    layout = join(mkdtempSync(join(tmpdir(), 'slipway-named-layout-')), 'layout');
    await run('skopeo', ['copy', '-q', '--all', '--src-tls-verify=false', `docker://${busybox}`, `oci:${layout}:bb`]);
    const top = mkdtempSync(join(tmpdir(), 'slipway-named-git-'));
    const work = join(top, 'work');
    mkdirSync(join(work, 'sub'), { recursive: true });
    writeFileSync(join(work, 'sub', 'from-git.txt'), 'git file\n');
    await run('git', ['init', '-q', '-b', 'main', work]);
    await run('git', ['-C', work, 'add', '.']);
    await run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'one']);
    await run('git', ['clone', '-q', '--bare', work, join(top, 'repo.git')]);
    if (!gitMissing) {
      const port = await freePort();
      daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${top}`, '--listen=127.0.0.1', `--port=${port}`, top], { stdio: 'ignore' });
      gitUrl = `git://127.0.0.1:${port}/repo.git#main:sub`;
      let up = false;
      for (let i = 0; i < 50 && !up; i++) {
        up = await run('git', ['ls-remote', gitUrl.split('#')[0]]).then(() => true, () => false);
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      if (!up) throw new Error('git daemon did not start');
    }
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/data.tgz') res.writeHead(200).end('not really a tarball\n');
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    httpUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data.tgz`;
  });
  after(async () => {
    daemon?.kill();
    server?.close();
    await reg?.stop();
  });

  async function rootfsOf(ctx: string, opts: Parameters<typeof buildContext>[1]) {
    const out = join(ctx, `out-${Math.random().toString(36).slice(2)}.tar`);
    const b = await buildContext(ctx, { platforms: ['linux/amd64'], insecureRegistries: [reg.host], ...opts, outputs: [`type=oci,dest=${out}`] });
    const bundle = await unpackOci(out);
    return { ...b, rootfs: join(bundle, 'rootfs'), config: JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process?: { env?: string[] } } };
  }

  test('a local directory: COPY --from reads it after its own .dockerignore; FROM makes it the filesystem; content keys the step', async () => {
    const named = makeContext({ 'keep.txt': 'kept\n', 'secret.key': 'no\n', '.dockerignore': '*.key\n' });
    const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY --from=files / /got/\n' });
    // The cache dir kept inside the named directory (a GitLab `cache:` path) is never part of it.
    const cache = join(named, '.slipway-cache');
    const first = await rootfsOf(ctx, { buildContexts: [`files=${named}`], cacheDir: cache });
    assert.equal(readFileSync(join(first.rootfs, 'got/keep.txt'), 'utf8'), 'kept\n');
    assert.equal(existsSync(join(first.rootfs, 'got/secret.key')), false, 'the context\'s .dockerignore applies');
    assert.equal(existsSync(join(first.rootfs, 'got/.slipway-cache')), false, 'the cache dir is not copied');
    // Unchanged: cached; a changed file: the step runs again.
    const again = await rootfsOf(ctx, { buildContexts: [`files=${named}`], cacheDir: cache });
    assert.equal(again.result.steps.cached, 1);
    writeFileSync(join(named, 'keep.txt'), 'changed\n');
    const changed = await rootfsOf(ctx, { buildContexts: [`files=${named}`], cacheDir: cache });
    assert.equal(changed.result.steps.run, 1);
    assert.equal(readFileSync(join(changed.rootfs, 'got/keep.txt'), 'utf8'), 'changed\n');
    // FROM files: the directory is the stage's filesystem.
    const from = await rootfsOf(makeContext({ Dockerfile: 'FROM files\nENV X=1\n' }), { buildContexts: [`files=${named}`] });
    assert.equal(readFileSync(join(from.rootfs, 'keep.txt'), 'utf8'), 'changed\n');
    assert.equal(existsSync(join(from.rootfs, 'secret.key')), false);
  });

  test('docker-image://: FROM NAME and COPY --from=NAME take the image, without asking Docker Hub for NAME', async () => {
    const ctx = makeContext({ Dockerfile: 'FROM alpine\nCOPY --from=tools /bin/busybox /copied-busybox\n' });
    const b = await rootfsOf(ctx, { buildContexts: [`alpine=docker-image://${busybox}`, `tools=docker-image://${busybox}`] });
    assert.ok(existsSync(join(b.rootfs, 'bin/busybox')), 'FROM alpine is the busybox image');
    assert.ok(existsSync(join(b.rootfs, 'copied-busybox')));
    assert.ok(b.config.process?.env?.some((e) => e.startsWith('PATH=')));
    assert.ok(!b.log.some((l) => l.includes('docker.io/library/alpine')), b.log.join('\n'));
  });

  test('oci-layout://DIR:TAG: FROM NAME and COPY --from=NAME read the layout (narrowed to the platform)', async () => {
    const ctx = makeContext({ Dockerfile: 'FROM base\nCOPY --from=other /bin/busybox /again\n' });
    const b = await rootfsOf(ctx, { buildContexts: [`base=oci-layout://${layout}:bb`, `other=oci-layout://${layout}`] });
    assert.ok(existsSync(join(b.rootfs, 'bin/busybox')));
    assert.ok(existsSync(join(b.rootfs, 'again')));
    const amd64 = readFileSync(join(b.rootfs, 'again'));
    assert.equal(amd64.readUInt16LE(18), 0x3e, 'the amd64 busybox of the index (ELF e_machine x86-64)');
    const arm = await rootfsOf(makeContext({ Dockerfile: 'FROM base\n' }), { platforms: ['linux/arm64'], buildContexts: [`base=oci-layout://${layout}:bb`] });
    assert.equal(readFileSync(join(arm.rootfs, 'bin/busybox')).readUInt16LE(18), 0xb7, 'the arm64 busybox for --platform linux/arm64 (ELF e_machine aarch64)');
  });

  test('docker-image://scratch is the empty filesystem, as in BuildKit', async () => {
    const b = await rootfsOf(makeContext({ Dockerfile: 'FROM base\nCOPY a /a\n', a: 'a\n' }), { buildContexts: ['base=docker-image://scratch'] });
    assert.equal(readFileSync(join(b.rootfs, 'a'), 'utf8'), 'a\n');
    assert.ok(!b.log.some((l) => l.includes('load metadata')), 'no registry asked');
  });

  test('a named context overrides the stage of its name: none of the stage runs', async () => {
    const named = makeContext({ 'out.txt': 'from the context\n' });
    const ctx = makeContext({ Dockerfile: 'FROM scratch AS build\nCOPY no-such-file /\n\nFROM scratch\nCOPY --from=build /out.txt /\n' });
    const b = await rootfsOf(ctx, { buildContexts: [`build=${named}`] });
    assert.equal(readFileSync(join(b.rootfs, 'out.txt'), 'utf8'), 'from the context\n');
    const img = await rootfsOf(makeContext({ Dockerfile: 'FROM scratch AS build\nCOPY no-such-file /\n\nFROM build\n' }), { buildContexts: [`build=docker-image://${busybox}`] });
    assert.ok(existsSync(join(img.rootfs, 'bin/busybox')), 'FROM build is the image that replaced the stage');
  });

  test('git and http contexts: fetched when used; git is the checkout (#ref:subdir), http the file `context`', { skip: gitMissing }, async () => {
    const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY --from=src from-git.txt /g.txt\nCOPY --from=dl context /dl.bin\n' });
    const b = await rootfsOf(ctx, { buildContexts: [`src=${gitUrl}`, `dl=${httpUrl}`, `unused=${httpUrl.replace('data', 'nothing')}`] });
    assert.equal(readFileSync(join(b.rootfs, 'g.txt'), 'utf8'), 'git file\n');
    assert.equal(readFileSync(join(b.rootfs, 'dl.bin'), 'utf8'), 'not really a tarball\n');
    assert.equal(statSync(join(b.rootfs, 'dl.bin')).mode & 0o777, 0o600, 'mode 0600, as BuildKit\'s http source');
    assert.equal(hits, 1, 'only the context a step uses is fetched');
    const from = await rootfsOf(makeContext({ Dockerfile: 'FROM src\n' }), { buildContexts: [`src=${gitUrl}`] });
    assert.equal(readFileSync(join(from.rootfs, 'from-git.txt'), 'utf8'), 'git file\n');
    const fromHttp = await rootfsOf(makeContext({ Dockerfile: 'FROM dl\n' }), { buildContexts: [`dl=${httpUrl}`] });
    assert.equal(readFileSync(join(fromHttp.rootfs, 'context'), 'utf8'), 'not really a tarball\n');
     // A context that cannot be fetched fails the step that uses it, at its Dockerfile line.
    await assert.rejects(buildContext(makeContext({ Dockerfile: 'FROM scratch\nFROM dl\n' }), { buildContexts: [`dl=${httpUrl.replace('data', 'gone')}`] }), /Dockerfile:2: build context dl: .*404/);
    await assert.rejects(buildContext(makeContext({ Dockerfile: 'FROM scratch\nCOPY --from=src a /\n' }), { buildContexts: [`src=${gitUrl.replace('repo.git', 'none.git')}`] }), /Dockerfile:2: build context src: cannot fetch main of/);
    await assert.rejects(buildContext(makeContext({ Dockerfile: 'FROM src\n' }), { buildContexts: [`src=${gitUrl.replace(':sub', ':nodir')}`] }), /Dockerfile:1: build context src: the repository has no directory nodir/);
  });

  test('RUN --mount=from=NAME binds each kind: directory, image, layout, git, http', { skip: runMissing() ?? gitMissing }, async () => {
    const named = makeContext({ 'd.txt': 'dir\n', 'hidden.txt': 'h\n', '.dockerignore': 'hidden.txt\n' });
    const ctx = makeContext({
      Dockerfile: [
        `FROM ${busybox}`,
        'RUN --mount=from=dir,target=/d --mount=from=img,target=/i --mount=from=lay,target=/l --mount=from=git,target=/g --mount=from=web,target=/w \\',
        '    cat /d/d.txt > /r.txt && (test -e /d/hidden.txt && echo leak || echo no-hidden) >> /r.txt && test -x /i/bin/busybox && test -x /l/bin/busybox && cat /g/from-git.txt /w/context >> /r.txt',
      ].join('\n') + '\n',
    });
    const contexts = [`dir=${named}`, `img=docker-image://${busybox}`, `lay=oci-layout://${layout}:bb`, `git=${gitUrl}`, `web=${httpUrl}`];
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-named-run-cache-'));
    const b = await rootfsOf(ctx, { buildContexts: contexts, cacheDir });
    assert.equal(readFileSync(join(b.rootfs, 'r.txt'), 'utf8'), 'dir\nno-hidden\ngit file\nnot really a tarball\n');
    // The bound directory's content is in the RUN's key: unchanged, cached; an ignored file changed, still cached; d.txt changed, run.
    assert.equal((await rootfsOf(ctx, { buildContexts: contexts, cacheDir })).result.steps.cached, 1);
    writeFileSync(join(named, 'hidden.txt'), 'h2\n');
    assert.equal((await rootfsOf(ctx, { buildContexts: contexts, cacheDir })).result.steps.cached, 1);
    writeFileSync(join(named, 'd.txt'), 'dir 2\n');
    const changed = await rootfsOf(ctx, { buildContexts: contexts, cacheDir });
    assert.equal(changed.result.steps.run, 1);
    assert.match(readFileSync(join(changed.rootfs, 'r.txt'), 'utf8'), /^dir 2\n/);
  });
});
