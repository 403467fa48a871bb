// End-to-end builds through the real engine: a real registry (distribution) serving umoci/skopeo
// fixtures, real runc for RUN, QEMU for arm64, and outputs checked with skopeo, umoci and tar.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { arm64Busybox, fixturesMissing, pushFixture, skopeoRawManifest } from '../harness/fixtures.ts';
import { buildContext, layerContents, makeContext, run, runBundle, runMissing, unpackOci } from './helpers.ts';
import { installedRuntimes } from '../runtime/helpers.ts';

/** The paths in each layer of an OCI layout tar, bottom first (listed by tar). */
async function layerFiles(ociTar: string, work: string): Promise<string[][]> {
  await run('mkdir', ['-p', work]);
  await run('tar', ['-xf', ociTar, '-C', work]);
  const index = JSON.parse(readFileSync(join(work, 'index.json'), 'utf8'));
  const manifest = JSON.parse(readFileSync(join(work, 'blobs', ...index.manifests[0].digest.split(':')), 'utf8'));
  const out: string[][] = [];
  for (const l of manifest.layers) out.push((await run('tar', ['-tzf', join(work, 'blobs', ...l.digest.split(':'))])).stdout.trim().split('\n'));
  return out;
}

const missing = registryMissing() ?? fixturesMissing();

describe('engine end to end', { skip: missing }, () => {
  let reg: TestRegistry;
  let busybox: string;

  before(async () => {
    reg = await startRegistry();
    busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
  });
  after(async () => reg?.stop());

  test('FROM scratch with COPY needs no registry and no root; the config follows the Dockerfile', async () => {
    const ctx = makeContext({
      Dockerfile: [
        'FROM scratch', 'COPY a.txt /app/', 'WORKDIR /app', 'ENV MODE=prod', 'USER 1000:1000', 'EXPOSE 8080', 'VOLUME /data',
        'STOPSIGNAL SIGTERM', 'HEALTHCHECK --interval=5s --retries=2 CMD ["/app/check"]', 'ENTRYPOINT ["/app/run"]', 'CMD ["--help"]', '',
      ].join('\n'),
      'a.txt': 'A',
    });
    const out = join(ctx, 'out.tar');
    const { result } = await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '1700000000' });
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
    const cfg = JSON.parse(stdout);
    assert.equal(cfg.created, '2023-11-14T22:13:20Z');
    assert.deepEqual(cfg.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'MODE=prod']);
    assert.equal(cfg.config.WorkingDir, '/app');
    assert.equal(cfg.config.User, '1000:1000');
    assert.deepEqual(cfg.config.ExposedPorts, { '8080/tcp': {} });
    assert.deepEqual(cfg.config.Volumes, { '/data': {} });
    assert.equal(cfg.config.StopSignal, 'SIGTERM');
    assert.deepEqual(cfg.config.Healthcheck, { Test: ['CMD', '/app/check'], Interval: 5e9, Retries: 2 });
    assert.deepEqual(cfg.config.Entrypoint, ['/app/run']);
    assert.deepEqual(cfg.config.Cmd, ['--help']);
    assert.deepEqual(cfg.history.map((h: { created_by: string }) => h.created_by), [
      'COPY a.txt /app/ # buildkit', 'WORKDIR /app', 'ENV MODE=prod', 'USER 1000:1000', 'EXPOSE map[8080/tcp:{}]', 'VOLUME [/data]',
      'STOPSIGNAL SIGTERM', 'HEALTHCHECK &{["CMD" "/app/check"] "5s" "0s" "0s" "0s" \'\\x02\'}', 'ENTRYPOINT ["/app/run"]', 'CMD ["--help"]',
    ]);
    assert.equal(result.images.length, 1);
    // Same inputs + SOURCE_DATE_EPOCH → the same digest, even with a cold cache.
    const again = await buildContext(ctx, { outputs: [`type=oci,dest=${join(ctx, 'out2.tar')}`], sourceDateEpoch: '1700000000' });
    assert.equal(again.result.digest, result.digest);
  });

  test('WORKDIR creates a missing directory (and parents) owned by USER; on an existing one the layer is empty, as BuildKit\'s', async () => {
    const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY a.txt /srv/\nWORKDIR /srv\nUSER 7:8\nWORKDIR /var/lib/app\n', 'a.txt': 'a' });
    const out = join(ctx, 'w.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '0' });
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
    const cfg = JSON.parse(stdout);
    assert.deepEqual(cfg.history.map((h: { created_by: string; empty_layer?: boolean }) => [h.created_by, h.empty_layer ?? false]), [
      ['COPY a.txt /srv/ # buildkit', false], ['WORKDIR /srv', false], ['USER 7:8', true], ['WORKDIR /var/lib/app', false],
    ]);
    assert.equal(cfg.rootfs.diff_ids.length, 3);
    // The empty tar: two zero blocks, the diffID docker shows for BuildKit's empty layers.
    assert.equal(cfg.rootfs.diff_ids[1], 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
    const bundle = await unpackOci(out);
    const { stdout: listing } = await run('stat', ['-c', '%n %a %u:%g', join(bundle, 'rootfs/var'), join(bundle, 'rootfs/var/lib/app')]);
    assert.deepEqual(listing.trim().split('\n').map((l) => l.replace(bundle + '/rootfs', '')), ['/var 755 7:8', '/var/lib/app 755 7:8']);
  });

  test('multi-stage: RUN in a busybox builder, FROM scratch + COPY --from; the image runs as its config says', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: [
        `FROM ${busybox} AS builder`,
        'WORKDIR /src',
        'COPY greet.sh .',
        'RUN chmod +x greet.sh && mkdir -p /out && cp /bin/busybox /out/busybox && echo built > /out/stamp',
        'FROM scratch',
        'COPY --from=builder /out/ /bin/',
        'COPY --from=builder /src/greet.sh /greet.sh',
        'ENV WHO=world',
        'WORKDIR /home/app',
        'USER 4242:4242',
        'ENTRYPOINT ["/bin/busybox", "sh", "/greet.sh"]',
        'CMD ["from-cmd"]', '',
      ].join('\n'),
      'greet.sh': 'echo "hello $WHO $1 uid=$(/bin/busybox id -u) pwd=$(/bin/busybox pwd)"\n',
    });
    const out = join(ctx, 'img.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const bundle = await unpackOci(out);
    assert.equal(readFileSync(join(bundle, 'rootfs/bin/stamp'), 'utf8'), 'built\n');
    const { stdout, code } = await runBundle(bundle);
    assert.equal(code, 0);
    assert.equal(stdout.trim(), 'hello world from-cmd uid=4242 pwd=/home/app');
  });

  test('a COPY after RUN steps, rebuilt with only its file changed, reads the chain\'s flat view and no layer index; the existing tree still rules', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nRUN mkdir -m 0700 /data && echo a > /data/a\nRUN ln -s /data /link && rm /data/a\nCOPY f.txt /link/f.txt\n`, 'f.txt': 'one\n',
    });
    const cacheDir = join(ctx, 'cache');
    const out = join(ctx, 'o.tar');
    await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${out}`] });
    const blob = async (digest: string) => JSON.parse((await run('tar', ['-xOf', out, `blobs/${digest.replace(':', '/')}`])).stdout);
    const index = JSON.parse((await run('tar', ['-xOf', out, 'index.json'])).stdout) as { manifests: Array<{ digest: string }> };
    const config = await blob((await blob(index.manifests[0].digest)).config.digest) as { rootfs: { diff_ids: string[] } };
    const parents = config.rootfs.diff_ids.slice(0, -1).map((d) => `${d.replace(':', '-')}.json`);
    const views = join(cacheDir, 'views');
    const chains = () => readdirSync(views).filter((n) => n.startsWith('chain-'));
    assert.equal(chains().length, 1, 'the COPY\'s view of its parent layers was kept flat');
    // Without the per-layer indexes, only the flat view can answer without reading the layers again.
    for (const n of readdirSync(views)) if (!n.startsWith('chain-')) rmSync(join(views, n));
    writeFileSync(join(ctx, 'f.txt'), 'two\n');
    const again = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${out}`] });
    assert.equal(again.result.steps.run, 1);
    assert.deepEqual(readdirSync(views).filter((n) => parents.includes(n)), [], 'no index of a layer below the COPY was made again');
    // Through the symlink into the 0700 dir that a RUN made, as on the first build.
    const rootfs = join(await unpackOci(out), 'rootfs');
    assert.equal(readFileSync(join(rootfs, 'data/f.txt'), 'utf8'), 'two\n');
    assert.equal(statSync(join(rootfs, 'data')).mode & 0o7777, 0o700);
  });

  test('--target builds only the stages it needs; a build arg chooses the base image', async () => {
    const ctx = makeContext({
      Dockerfile: [
        'ARG BASE=scratch',
        'FROM ${BASE} AS base',
        'COPY a.txt /',
        'FROM base AS never',
        'RUN exit 1',
        'FROM base AS final',
        'COPY b.txt /', '',
      ].join('\n'),
      'a.txt': 'a', 'b.txt': 'b',
    });
    const onScratch = await buildContext(ctx, { target: 'final', outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    assert.ok(!onScratch.log.some((l) => l.includes('RUN exit 1')), 'the unused stage must not run');
    assert.equal(onScratch.result.steps.run, 2);
    const onBusybox = await buildContext(ctx, { target: 'final', buildArgs: [`BASE=${busybox}`], platforms: ['linux/amd64'], outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    const { stdout } = await run('skopeo', ['inspect', `oci-archive:${join(ctx, '2.tar')}`]);
    assert.equal(JSON.parse(stdout).Layers.length, 3, 'busybox layer + two COPY layers');
    assert.equal(JSON.parse(stdout).Labels.fixture, 'busybox-amd64');
    assert.notEqual(onBusybox.result.digest, onScratch.result.digest);
  });

  test('COPY --from=<image> reads files out of a registry image', async () => {
    const ctx = makeContext({ Dockerfile: `FROM scratch\nCOPY --from=${busybox} /bin/busybox /bb\n` });
    const out = join(ctx, 'o.tar');
    await buildContext(ctx, { platforms: ['linux/arm64'], outputs: [`type=oci,dest=${out}`] });
    const files = await layerContents(out);
    const arm = readFileSync(arm64Busybox);
    assert.ok(files.some((f) => f.equals(arm)), 'the arm64 busybox binary is in the layer');
  });

  test('a failing RUN fails the build with its exit code, the step and its output', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo about to fail && exit 3\n` });
    await assert.rejects(buildContext(ctx, { outputs: ['type=oci,dest=' + join(ctx, 'x.tar')] }), (e: Error) => {
      assert.match(e.message, /Dockerfile:2: RUN failed: process "\/bin\/sh -c echo about to fail && exit 3" did not complete successfully: exit code: 3/);
      assert.match(e.message, /about to fail/);
      return true;
    });
  });

  test('a secret is readable in RUN and absent from every layer, config and cache entry', { skip: runMissing() }, async () => {
    const secret = 'S3CR3T-' + Math.random().toString(36).slice(2);
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len\nRUN --mount=type=secret,id=tok,env=TOK sh -c 'test "$TOK" = "$(cat /run/secrets/tok 2>/dev/null || echo $TOK)" && echo ok > /env-ok'\n` });
    const out = join(ctx, 's.tar');
    const cacheDir = join(ctx, 'cache');
    await buildContext(ctx, { secrets: ['id=tok,env=TOK'], env: { TOK: secret }, outputs: [`type=oci,dest=${out}`], cacheDir });
    const files = await layerContents(out);
    assert.ok(files.some((f) => f.toString() === `${secret.length}\n`), 'RUN saw the secret');
    assert.ok(files.some((f) => f.toString() === 'ok\n'), 'the env form works');
    for (const f of files) assert.ok(!f.includes(secret), 'the secret is in no layer or config');
    const { stdout } = await run('grep', ['-rl', secret, cacheDir]).catch((e) => ({ stdout: e.stdout as string }));
    assert.equal(stdout, '', 'the secret is nowhere in the cache');
  });

  test('a rebuild with nothing changed hits the cache on every step; one changed file re-runs only what follows', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a.copy\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b.copy\n`,
      'a.txt': 'one', 'b.txt': 'two',
    });
    const cacheDir = join(ctx, 'cache');
    const first = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, '1.tar')], sourceDateEpoch: '1' });
    assert.deepEqual(first.result.steps, { cached: 0, run: 4 });
    const second = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, '2.tar')], sourceDateEpoch: '1' });
    assert.deepEqual(second.result.steps, { cached: 4, run: 0 });
    assert.equal(second.result.digest, first.result.digest);
    await run('sh', ['-c', `echo changed > ${join(ctx, 'b.txt')}`]);
    const third = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, '3.tar')], sourceDateEpoch: '1' });
    assert.deepEqual(third.result.steps, { cached: 2, run: 2 });
    const noCache = await buildContext(ctx, { cacheDir, noCache: true, outputs: ['type=oci,dest=' + join(ctx, '4.tar')], sourceDateEpoch: '1' });
    assert.deepEqual(noCache.result.steps, { cached: 0, run: 4 });
    assert.equal(noCache.result.digest, third.result.digest, 'RUN layers are reproducible with SOURCE_DATE_EPOCH');
  });

  test('without SOURCE_DATE_EPOCH a fully cached rebuild still gives the same digest (times come from the cache)', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nENV A=1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b\nCMD ["sh"]\n`, 'a.txt': 'a' });
    const cacheDir = join(ctx, 'cache');
    const first = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    await new Promise((r) => setTimeout(r, 1100));
    const second = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    assert.deepEqual(second.result.steps, { cached: 2, run: 0 });
    assert.equal(second.result.digest, first.result.digest);
  });

  test('--cache-to/--cache-from type=registry: a runner with an empty cache dir reuses every step from the registry', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b && date +%s%N > /ran-at\n`, 'a.txt': 'a' });
    const cacheRef = `${reg.host}/e2e/cache:buildcache`;
    const first = await buildContext(ctx, { cacheTo: `type=registry,ref=${cacheRef}`, outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    assert.deepEqual(first.result.steps, { cached: 0, run: 2 });
    const manifest = JSON.parse((await skopeoRawManifest(reg, cacheRef)).toString());
    assert.equal(manifest.artifactType, 'application/vnd.slipway.cache.v1');
    const isLayer = (l: { mediaType: string }) => /\.layer\./.test(l.mediaType);
    assert.equal(manifest.layers.filter(isLayer).length, 2, 'the COPY and RUN layers');
    assert.equal(manifest.layers.filter((l: { mediaType: string }) => !isLayer(l)).length, 2, 'and the base image\'s manifest and config (its resolution)');
    const second = await buildContext(ctx, { cacheFrom: [`type=registry,ref=${cacheRef}`], outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    assert.deepEqual(second.result.steps, { cached: 2, run: 0 }, 'nothing ran on the second runner');
    assert.equal(second.result.digest, first.result.digest);
    // A cache ref that does not exist yet is a warning, not a failure.
    const third = await buildContext(ctx, { cacheFrom: [`${reg.host}/e2e/cache:missing`], outputs: ['type=oci,dest=' + join(ctx, '3.tar')] });
    assert.ok(third.log.some((l) => /WARN cache-from .*cache:missing: not found/.test(l)));
    assert.deepEqual(third.result.steps, { cached: 0, run: 2 });
  });

  test('a cached COPY onto a base in a registry reads nothing of that base: pushed by mounts, never downloaded', async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY a.txt /tmp/a.txt\n`, 'a.txt': 'a' });
    const cacheRef = `${reg.host}/e2e/cache:copy`;
    const tag = `${reg.host}/e2e/copyonly:1`;
    await buildContext(ctx, { platforms: ['linux/amd64'], cacheTo: `type=registry,ref=${cacheRef}`, tags: [tag], push: true });
    const cacheDir = join(ctx, 'fresh-cache');
    const second = await buildContext(ctx, { platforms: ['linux/amd64'], cacheDir, cacheFrom: [cacheRef], tags: [tag], push: true });
    assert.deepEqual(second.result.steps, { cached: 1, run: 0 });
    const manifest = JSON.parse((await skopeoRawManifest(reg, tag)).toString());
    const baseLayer = manifest.layers[0].digest as string;
    assert.ok(!existsSync(join(cacheDir, 'blobs', ...baseLayer.split(':'))), 'the busybox layer was not downloaded');
  });

  test('--cache-to mode=min exports the final image\'s steps only; mode=max every stage\'s', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox} AS build\nRUN echo secret-ish > /tool && echo other > /other\nFROM scratch\nCOPY --from=build /tool /tool\n` });
    const layersOf = async (mode: string) => {
      const ref = `${reg.host}/e2e/cache:${mode}`;
      await buildContext(ctx, { cacheTo: `type=registry,ref=${ref},mode=${mode}`, outputs: ['type=oci,dest=' + join(ctx, `${mode}.tar`)] });
      // Layers only: the base image's manifest and config go along in both modes.
      return JSON.parse((await skopeoRawManifest(reg, ref)).toString()).layers.filter((l: { mediaType: string }) => /\.layer\./.test(l.mediaType)).length;
    };
    assert.equal(await layersOf('min'), 1, 'only the COPY layer of the final image');
    assert.equal(await layersOf('max'), 2, 'the builder stage\'s RUN layer too');
  });

  test('a new SOURCE_DATE_EPOCH re-runs no step, and gives the digest a cold build with that epoch gives', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b\n`, 'a.txt': 'a' });
    const cacheDir = join(ctx, 'cache');
    await buildContext(ctx, { cacheDir, sourceDateEpoch: '1000', outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    const warm = await buildContext(ctx, { cacheDir, sourceDateEpoch: '2000', outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    assert.deepEqual(warm.result.steps, { cached: 2, run: 0 });
    const cold = await buildContext(ctx, { sourceDateEpoch: '2000', outputs: ['type=oci,dest=' + join(ctx, '3.tar')] });
    assert.deepEqual(cold.result.steps, { cached: 0, run: 2 });
    assert.equal(warm.result.digest, cold.result.digest);
  });

  test('linux/amd64 + linux/arm64 pushed as an index; the arm64 image runs under QEMU and says aarch64', { skip: runMissing() }, async () => {
    // The COPY layer is the same for both platforms, so both RUNs stack the same extracted layer.
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nCOPY app.txt /app/app.txt\nWORKDIR /app\nARG TARGETARCH\nRUN uname -m > /uname && echo $TARGETARCH > /targetarch && cat app.txt\nRUN cat /uname\n`,
      'app.txt': 'shared',
    });
    const tag = `${reg.host}/e2e/multi:1`;
    const { result } = await buildContext(ctx, { platforms: ['linux/amd64,linux/arm64'.split(',')].flat(), tags: [tag], push: true, perArchTags: true });
    const index = JSON.parse((await skopeoRawManifest(reg, tag)).toString());
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.deepEqual(index.manifests.map((m: { platform: { architecture: string } }) => m.platform.architecture), ['amd64', 'arm64']);
    assert.equal(result.digest.length, 71);
    const armTag = JSON.parse((await skopeoRawManifest(reg, `${tag}-arm64`)).toString());
    assert.equal(armTag.config.digest, result.images[1].configDigest);
    // Pull the arm64 image back with skopeo, unpack with umoci, and run it with runc (QEMU binfmt).
    const out = join(ctx, 'arm.tar');
    await run('skopeo', ['copy', '-q', '--src-tls-verify=false', '--override-arch=arm64', `docker://${tag}`, `oci-archive:${out}`]);
    const bundle = await unpackOci(out);
    assert.equal(readFileSync(join(bundle, 'rootfs/uname'), 'utf8'), 'aarch64\n');
    assert.equal(readFileSync(join(bundle, 'rootfs/targetarch'), 'utf8'), 'arm64\n');
    const ran = await runBundle(bundle, ['/bin/uname', '-m']);
    assert.equal(ran.stdout.trim(), 'aarch64');
  });

  test('a --platform=$BUILDPLATFORM stage runs once and serves every target platform', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: [
        `FROM --platform=$BUILDPLATFORM ${busybox} AS tools`,
        'RUN uname -m > /built-on',
        'FROM scratch',
        'ARG TARGETARCH',
        'COPY --from=tools /built-on /built-on', '',
      ].join('\n'),
    });
    const { result, log } = await buildContext(ctx, { platforms: ['linux/amd64', 'linux/arm64'], outputs: ['type=oci,dest=' + join(ctx, 'o.tar')] });
    assert.equal(log.filter((l) => l.startsWith('DONE') && l.includes('RUN uname -m > /built-on')).length, 1, 'the RUN ran once');
    assert.deepEqual(result.steps, { run: 3, cached: 1 }, 'one RUN + one COPY per platform (the second platform reuses the RUN)');
    const files = await layerContents(join(ctx, 'o.tar'));
    assert.equal(files.filter((f) => f.toString() === 'x86_64\n').length, 2, 'both images carry the build platform\'s output');
  });

  test('ONBUILD triggers of the base image run first and are not inherited', { skip: runMissing() }, async () => {
    const baseCtx = makeContext({ Dockerfile: `FROM ${busybox}\nONBUILD COPY trigger.txt /from-trigger\nONBUILD RUN echo ran > /onbuild-ran\n` });
    const baseTag = `${reg.host}/e2e/onbuild-base:1`;
    await buildContext(baseCtx, { tags: [baseTag], push: true });
    const ctx = makeContext({ Dockerfile: `FROM ${baseTag}\nRUN cat /from-trigger /onbuild-ran > /both\n`, 'trigger.txt': 'copied\n' });
    const out = join(ctx, 'o.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const files = await layerContents(out);
    assert.ok(files.some((f) => f.toString() === 'copied\nran\n'), 'the triggers ran before the stage\'s own RUN');
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
    assert.equal(JSON.parse(stdout).config.OnBuild, undefined);
  });

  test('RUN --mount=type=bind sees the context after .dockerignore; rw writes never reach the host or the image', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: [
        `FROM ${busybox}`,
        'RUN --mount=type=bind,target=/ctx ls -a /ctx > /listing',
        'RUN --mount=type=bind,target=/ctx,rw rm /ctx/pub.txt && echo x > /ctx/new && ls /ctx > /rw-listing',
        'RUN --mount=type=cache,id=..,target=/c ls -a /c > /cache-listing', '',
      ].join('\n'),
      '.dockerignore': '.env\n', '.env': 'TOPSECRET', 'pub.txt': 'public',
    });
    const out = join(ctx, 'b.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const files = (await layerContents(out)).map((f) => f.toString());
    const listing = files.find((f) => f.includes('pub.txt') && f.includes('Dockerfile') && f.startsWith('.\n'));
    assert.ok(listing, 'the bind mount shows the context');
    assert.ok(!listing!.includes('.env'), 'an ignored file is not in the bind mount');
    assert.ok(files.includes('Dockerfile\nnew\n'), 'rw: the step could write');
    assert.equal(readFileSync(join(ctx, 'pub.txt'), 'utf8'), 'public', 'the host context is untouched');
    assert.ok(!existsSync(join(ctx, 'new')));
    assert.ok(files.includes('.\n..\n'), 'cache id ".." is a fresh directory, not the cache dir');
    assert.ok(!files.some((f) => f.includes('TOPSECRET')));
  });

  test('RUN --mount=type=cache: persists between builds, locked ids never deadlock (same id twice, two platforms)', { skip: runMissing(), timeout: 60_000 }, async () => {
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nARG TARGETARCH\nRUN --mount=type=cache,id=c,target=/a,sharing=locked --mount=type=cache,id=c,target=/b,sharing=locked echo $TARGETARCH >> /a/log && cat /b/log > /seen\n`,
    });
    const cacheDir = join(ctx, 'cache');
    await buildContext(ctx, { cacheDir, platforms: ['linux/amd64', 'linux/arm64'], outputs: ['type=oci,dest=' + join(ctx, '1.tar')] });
    await buildContext(ctx, { cacheDir, noCache: true, platforms: ['linux/amd64'], outputs: ['type=oci,dest=' + join(ctx, '2.tar')] });
    const seen = (await layerContents(join(ctx, '2.tar'))).map((f) => f.toString()).find((f) => f.split('\n').filter(Boolean).length === 3);
    assert.ok(seen, 'the third run saw the two earlier runs\' lines in the cache mount');
    assert.deepEqual(seen!.trim().split('\n').sort(), ['amd64', 'amd64', 'arm64']);
  });

  test('Ctrl-C stops a running step, and the build unmounts and removes what it made', { skip: runMissing(), timeout: 60_000 }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo started && sleep 30\n` });
    const cacheDir = join(ctx, 'cache');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [new URL('../../src/cli/main.ts', import.meta.url).pathname, 'build', '--progress', 'plain', '--cache-dir', cacheDir, '-o', `type=oci,dest=${join(ctx, 'x.tar')}`, ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && /^#\d+ started$/m.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const started = Date.now();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 130, `exits as shells report SIGINT: ${stderr}`);
    assert.ok(Date.now() - started < 30_000, 'it did not wait for the sleep');
    assert.match(stderr, /interrupted/);
    const { stdout: mounts } = await run('cat', ['/proc/self/mounts']);
    assert.ok(!mounts.includes(cacheDir), 'no mount left under the cache dir');
    assert.deepEqual((await run('ls', ['-A', join(cacheDir, 'tmp')])).stdout.trim(), '', 'no build dir left');
    assert.ok(!existsSync(join(ctx, 'x.tar')));
  });

  test('a build whose output pipe closes (slipway build | head) stops its step, unmounts and removes what it made, and exits as SIGPIPE would', { skip: runMissing(), timeout: 60_000 }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo started && for i in $(seq 1 300); do echo tick $i; sleep 0.1; done\n` });
    const cacheDir = join(ctx, 'cache');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [new URL('../../src/cli/main.ts', import.meta.url).pathname, 'build', '--progress', 'plain', '--cache-dir', cacheDir, '-o', `type=oci,dest=${join(ctx, 'x.tar')}`, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    await new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); if (/^#\d+ started$/m.test(stderr)) resolve(); }));
    const started = Date.now();
    child.stderr.destroy(); // as `head` exits: the step's next line meets a closed pipe
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 128 + 13, 'exits as shells report SIGPIPE');
    assert.ok(Date.now() - started < 20_000, 'it did not wait for the step to end');
    const { stdout: mounts } = await run('cat', ['/proc/self/mounts']);
    assert.ok(!mounts.includes(cacheDir), 'no mount left under the cache dir');
    assert.deepEqual((await run('ls', ['-A', join(cacheDir, 'tmp')])).stdout.trim(), '', 'no build dir left');
    assert.ok(!existsSync(join(ctx, 'x.tar')));
  });

  test('a build killed with SIGKILL leaves mounts behind; the next build on that cache dir removes them', { skip: runMissing(), timeout: 60_000 }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo started && sleep 30\n` });
    const cacheDir = join(ctx, 'cache');
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [new URL('../../src/cli/main.ts', import.meta.url).pathname, 'build', '--progress', 'plain', '--cache-dir', cacheDir, '-o', `type=oci,dest=${join(ctx, 'x.tar')}`, ctx], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    await new Promise<void>((resolve) => child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); if (/^#\d+ started$/m.test(stderr)) resolve(); }));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const mounted = async () => (await run('cat', ['/proc/self/mounts'])).stdout.split('\n').filter((l) => l.includes(cacheDir));
    assert.ok((await mounted()).length > 0, 'the killed build left its overlay mounted');
    // The step's container outlives the killed build (its sleep ends by itself); the lazy unmount
    // of the sweep does not wait for it.
    const quick = makeContext({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a' });
    await buildContext(quick, { cacheDir, outputs: ['type=oci,dest=' + join(quick, 'q.tar')] });
    assert.deepEqual(await mounted(), [], 'no mount left under the cache dir');
    assert.deepEqual((await run('ls', ['-A', join(cacheDir, 'tmp')])).stdout.trim(), '', 'no build dir left');
  });

  test('a final stage pinned to $BUILDPLATFORM is labelled with each requested platform; identical layers stack under RUN', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: `FROM --platform=$BUILDPLATFORM ${busybox}\nCOPY f.txt /a/\nCOPY f.txt /a/\nRUN ls /a > /ls\n`, 'f.txt': 'f',
    });
    const { result } = await buildContext(ctx, { platforms: ['linux/arm64', 'linux/amd64'], outputs: ['type=oci,dest=' + join(ctx, 'p.tar')] });
    assert.deepEqual(result.images.map((i) => i.platform.architecture), ['arm64', 'amd64']);
    const { stdout } = await run('tar', ['-xOf', join(ctx, 'p.tar'), 'index.json']);
    const index = JSON.parse(stdout);
    assert.equal(index.manifests.length, 1);
  });

  test('a directory the step recreated with the same times as before stays in the layer (it is below an opaque dir)', { skip: runMissing() }, async () => {
    const ctx = makeContext({
      Dockerfile: `FROM ${busybox}\nRUN mkdir -p /a/b /a/c && touch -t 200001010000 /a/b && echo x > /a/c/f\nRUN rm -rf /a && mkdir -p /a/b /a/c && touch -t 200001010000 /a/b && echo y > /a/c/f\n`,
    });
    const out = join(ctx, 'o.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const rootfs = join(await unpackOci(out), 'rootfs');
    assert.ok(existsSync(join(rootfs, 'a/b')), '/a/b is in the image');
    assert.equal(readFileSync(join(rootfs, 'a/c/f'), 'utf8'), 'y\n');
  });

  test('a RUN layer holds what the step changed, not the directories of its mountpoints', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo hi > /hello\n` });
    const out = join(ctx, 'r.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    assert.deepEqual((await layerFiles(out, join(ctx, 'x'))).at(-1), ['hello']);
  });

  test('a RUN after one that changed /etc leaves /etc out of its layer: its mountpoint stubs\' parent gets its time back', { skip: runMissing() }, async () => {
    // The second step's runtime makes /etc/hosts and /etc/resolv.conf stubs in an /etc whose time
    // the first step set to the nanosecond; the stubs go and /etc is as it was, so no copy of it.
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN echo app:x:1000:1000::/:/bin/sh >> /etc/passwd\nRUN echo hi > /hello\n` });
    const out = join(ctx, 'r.tar');
    await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
    const layers = await layerFiles(out, join(ctx, 'x'));
    assert.deepEqual(layers.at(-2), ['etc/', 'etc/passwd']);
    assert.deepEqual(layers.at(-1), ['hello']);
  });

  test('RUN steps run on the previous step\'s upper dir while its layer is written; each upper dir is then kept as its layer', { skip: runMissing(), timeout: 60_000 }, async () => {
    // ~64 MB that gzip works on for a while: the next step starts before that layer's blob is done.
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN head -c 48000000 /dev/urandom | base64 > /big\nENV STEP=two\nRUN touch /started && rm /bin/ls\nRUN echo $STEP > /three\nCOPY a.txt /a.txt\n`, 'a.txt': 'a' });
    const cacheDir = join(ctx, 'cache');
    const out = join(ctx, 'w.tar');
    const first = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${out}`] });
    assert.deepEqual(first.result.steps, { cached: 0, run: 4 });
    const { stdout: cfgText } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`]);
    const diffIDs: string[] = JSON.parse(cfgText).rootfs.diff_ids;
    const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`])).stdout);
    const blobOf = (i: number) => join(cacheDir, 'blobs', ...manifest.layers.at(i).digest.split(':'));
    // When /started was made, to the nanosecond: in the second step's upper dir, kept in the store.
    const started = statSync(join(cacheDir, 'snapshots', diffIDs.at(-3)!.slice(7), 'started'), { bigint: true }).mtimeNs;
    assert.ok(started < statSync(blobOf(-4), { bigint: true }).mtimeNs, 'the second RUN started before the first one\'s layer was written');
    assert.equal((await run('tar', ['-xzOf', blobOf(-2), 'three'])).stdout, 'two\n', 'ENV between them applies');
    // Each RUN's upper dir went into the store under its layer's diffID (whiteout included), and the
    // mounts and dirs of the steps are gone.
    for (const d of diffIDs.slice(-4, -1)) assert.ok(existsSync(join(cacheDir, 'snapshots', d.slice(7) + '.done')), d);
    assert.equal((await run('sh', ['-c', `ls -la ${join(cacheDir, 'snapshots', diffIDs.at(-3)!.slice(7), 'bin', 'ls')}`])).stdout[0], 'c');
    assert.deepEqual(readdirSync(join(cacheDir, 'tmp')), []);
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(cacheDir));
    const again = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(ctx, 'w2.tar')}`] });
    assert.deepEqual(again.result.steps, { cached: 4, run: 0 });
    assert.equal(again.result.digest, first.result.digest);
  });

  test('at a miss that a RUN follows, the stage\'s layers are extracted while the missed step works; with no RUN after it, never', { skip: runMissing(), timeout: 60_000 }, async () => {
    // ~40 MB of base64 that gzip works on for a while: the base is in the store before that COPY's blob is.
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY big.txt /big.txt\nRUN test -s /big.txt\n`, 'big.txt': randomBytes(30_000_000).toString('base64') });
    const cacheDir = join(ctx, 'cache');
    const out = join(ctx, 'p.tar');
    await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${out}`] });
    const diffIDs: string[] = JSON.parse((await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${out}`])).stdout).rootfs.diff_ids;
    const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${out}`])).stdout);
    const copyBlob = join(cacheDir, 'blobs', ...manifest.layers.at(-2).digest.split(':'));
    // The extracted base went into the store (a rename: its ctime) before the COPY's blob was written.
    const base = join(cacheDir, 'snapshots', diffIDs[0].slice(7));
    assert.ok(statSync(base, { bigint: true }).ctimeNs < statSync(copyBlob, { bigint: true }).mtimeNs, 'the base was extracted before the COPY layer was written');
    // No RUN after the miss: nothing to extract, so nothing is.
    const plain = makeContext({ Dockerfile: `FROM ${busybox}\nCOPY a.txt /a.txt\n`, 'a.txt': 'a' });
    const plainCache = join(plain, 'cache');
    await buildContext(plain, { cacheDir: plainCache, outputs: [`type=oci,dest=${join(plain, 'q.tar')}`] });
    assert.deepEqual(existsSync(join(plainCache, 'snapshots')) ? readdirSync(join(plainCache, 'snapshots')) : [], []);
  });

  test('a RUN that fails while the layers before it are still written: its error, no mount or dir left, the steps before it cached', { skip: runMissing(), timeout: 60_000 }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN head -c 24000000 /dev/urandom | base64 > /big\nRUN exit 7\n` });
    const cacheDir = join(ctx, 'cache');
    await assert.rejects(buildContext(ctx, { cacheDir }), /Dockerfile:3: RUN failed: .* exit code: 7/);
    assert.deepEqual(readdirSync(join(cacheDir, 'tmp')), []);
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(cacheDir));
    await run('sh', ['-c', `sed -i 's/exit 7/true/' ${join(ctx, 'Dockerfile')}`]);
    assert.deepEqual((await buildContext(ctx, { cacheDir })).result.steps, { cached: 1, run: 1 });
  });

  // Under crun a node with allow-listed numbers (zero) opens: crun remounts the rootfs without nodev.
  for (const isolation of ['runc', 'crun'] as const) {
    test(`${isolation}: a device node a step made (or an image shipped) opens nothing off the allow-list in a later step; /dev/null still works`, { skip: runMissing() ?? (installedRuntimes().includes(isolation) ? undefined : `${isolation} is not installed`) }, async () => {
      const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN mknod /mem c 1 1 && mknod /zero c 1 5\nRUN (head -c 16 /zero | wc -c | sed s/^/zero:/) 2>&1; (head -c 16 /mem | wc -c) 2>&1; echo ok > /dev/null && echo null-ok\n` });
      const out = (await buildContext(ctx, { isolation })).log.join('');
      assert.match(out, isolation === 'runc' ? /\/zero: (Operation not permitted|Permission denied)\nzero:0\n/ : /zero:16\n/, out);
      assert.match(out, /\/mem: (Operation not permitted|Permission denied)/, out);
      assert.match(out, /null-ok/, out);
    });
  }

  test('a RUN step keeps its overlay upper dir as the new layer\'s extracted form, equal to extracting the layer', { skip: runMissing() }, async () => {
    const ctx = makeContext({ Dockerfile: `FROM ${busybox}\nRUN rm /bin/ls && mkdir -p /d/e && echo f > /d/e/f && ln /d/e/f /d/hard && ln -s e/f /d/sym\n` });
    const cacheDir = join(ctx, 'cache');
    const { result } = await buildContext(ctx, { cacheDir, outputs: ['type=oci,dest=' + join(ctx, 'k.tar')] });
    const { stdout: cfgText } = await run('skopeo', ['inspect', '--raw', '--config', `oci-archive:${join(ctx, 'k.tar')}`]);
    const diffIDs: string[] = JSON.parse(cfgText).rootfs.diff_ids;
    const kept = join(cacheDir, 'snapshots', diffIDs[diffIDs.length - 1].slice(7));
    assert.ok(existsSync(kept + '.done'));
    const { extractLayerOnce } = await import('../../src/fs/index.ts');
    const manifest = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci-archive:${join(ctx, 'k.tar')}`])).stdout);
    const blob = join(cacheDir, 'blobs', ...manifest.layers[manifest.layers.length - 1].digest.split(':'));
    const fresh = await extractLayerOnce(join(ctx, 'other-store'), diffIDs[diffIDs.length - 1], blob);
    const describe = async (dir: string) => (await run('sh', ['-c', `cd ${dir} && find . -mindepth 1 ! -type d -printf '%p %y %m %u:%g %s %l %n\\n' | sort; getfattr -R -d -m trusted.overlay.opaque --absolute-names . 2>/dev/null | grep -v '^#' | sort`])).stdout;
    // A whiteout is a 0/0 character device whatever its mode.
    const norm = (t: string) => t.replace(/ c [0-7]+ /g, ' c ');
    assert.equal(norm(await describe(kept)), norm(await describe(fresh)));
    assert.match(await describe(kept), /\.\/bin\/ls c \d+ root:root 0 {2}1/, 'the deletion is a whiteout device');
    assert.equal(result.steps.run, 1);
  });
});
