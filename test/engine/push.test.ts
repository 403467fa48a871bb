// Pushing to a real registry (through a recording proxy): what a push asks of the registry when
// the repository already has the platform manifests, and that such a push still lands every tag.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { startProxy, type RecordingProxy } from '../harness/proxy.ts';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { buildContext, makeContext, run, runMissing } from './helpers.ts';
import { registryPort } from '../../src/engine/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';

const missing = registryMissing() ?? fixturesMissing();

describe('push', { skip: missing }, () => {
  let reg: TestRegistry;
  let proxy: RecordingProxy;
  let base: string;
  const dirs: string[] = [];

  before(async () => {
    reg = await startRegistry();
    proxy = await startProxy(reg.url);
    base = `${proxy.host}/library/busybox:1`;
    await pushFixture(reg, 'multiarch', 'library/busybox:1');
  });
  after(async () => {
    await proxy?.stop();
    await reg?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('a rebuild whose platform manifests the repository has: one HEAD per platform, no blob request, every tag made to name it (written where it named something else)', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'app\n' });
    const platforms = ['linux/amd64', 'linux/arm64'];
    const first = await buildContext(ctx, { cacheDir, platforms, push: true, tags: [`${proxy.host}/app/pushed:1`], sourceDateEpoch: '0' });
    assert.ok(proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/app/pushed/blobs/uploads/')), 'the first push uploaded blobs');
    const before = proxy.requests.length;
    const again = await buildContext(ctx, { cacheDir, platforms, push: true, tags: [`${proxy.host}/app/pushed:1`, `${proxy.host}/app/pushed:2`], sourceDateEpoch: '0' });
    assert.equal(again.result.digest, first.result.digest);
    const seen = proxy.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(seen.filter((l) => l.includes('/blobs/')), [], seen.join('\n'));
    assert.equal(seen.filter((l) => /^HEAD \/v2\/app\/pushed\/manifests\/sha256:/.test(l)).length, 2, seen.join('\n'));
    assert.ok(!seen.some((l) => /^PUT \/v2\/app\/pushed\/manifests\/sha256:/.test(l) && !l.endsWith(first.result.digest)), `only the index is PUT by digest: ${seen.join('\n')}`);
    // Tag 1 already named this index: asked, not written again; tag 2 is new.
    assert.deepEqual(seen.filter((l) => /^(HEAD|PUT) \/v2\/app\/pushed\/manifests\/\d$/.test(l)).sort(), ['HEAD /v2/app/pushed/manifests/1', 'HEAD /v2/app/pushed/manifests/2', 'PUT /v2/app/pushed/manifests/2'], seen.join('\n'));
    // Both tags name it now: one HEAD per tag is the whole push.
    const beforeThird = proxy.requests.length;
    await buildContext(ctx, { cacheDir, platforms, push: true, tags: [`${proxy.host}/app/pushed:1`, `${proxy.host}/app/pushed:2`], sourceDateEpoch: '0' });
    const third = proxy.requests.slice(beforeThird).map((r) => `${r.method} ${r.path}`).filter((l) => l.includes('/app/pushed/'));
    assert.deepEqual(third.sort(), ['HEAD /v2/app/pushed/manifests/1', 'HEAD /v2/app/pushed/manifests/2'], third.join('\n'));
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/pushed:2`]);
    const index = JSON.parse(stdout) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests.length, 2);
    // Each platform manifest it names is whole in the repository: skopeo copies it out.
    const out = mkdtempSync(join(tmpdir(), 'slipway-push-out-'));
    dirs.push(out);
    await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/app/pushed:2`, `oci:${out}:x`]);
    // Tag 1 moved to another image: the next push of the first writes it back.
    const other = await buildContext(makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'other\n' }), { cacheDir, platforms, push: true, tags: [`${proxy.host}/app/pushed:1`], sourceDateEpoch: '0' });
    assert.notEqual(other.result.digest, first.result.digest);
    const beforeBack = proxy.requests.length;
    await buildContext(ctx, { cacheDir, platforms, push: true, tags: [`${proxy.host}/app/pushed:1`], sourceDateEpoch: '0' });
    assert.ok(proxy.requests.slice(beforeBack).some((r) => r.method === 'PUT' && r.path === '/v2/app/pushed/manifests/1'), 'tag 1 written again');
    const digestOf = async (tag: string) => (await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/pushed:${tag}`])).stdout;
    assert.equal(`sha256:${createHash('sha256').update(await digestOf('1')).digest('hex')}`, first.result.digest);
  });

  test('the tags are asked as the build starts, beside the base\'s HEAD; an answer older than 5 s is asked again at the push', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'early\n' });
    const opts = { cacheDir, push: true, tags: [`${proxy.host}/app/early:1`], sourceDateEpoch: '0' };
    const first = await buildContext(ctx, opts);
    const rebuild = async (retryAfter: string): Promise<string[]> => {
      // The base's HEAD is answered 503 once: the build waits Retry-After seconds before it resolves its base.
      proxy.addFault({ method: 'HEAD', path: /\/library\/busybox\/manifests\/1$/, fault: { status: 503, retryAfter } });
      const from = proxy.requests.length;
      const again = await buildContext(ctx, opts);
      assert.equal(again.result.digest, first.result.digest);
      return proxy.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
    };
    const soon = await rebuild('1');
    const tagHead = soon.indexOf('HEAD /v2/app/early/manifests/1 200');
    const baseHead = soon.indexOf('HEAD /v2/library/busybox/manifests/1 200');
    assert.ok(tagHead !== -1 && baseHead !== -1 && tagHead < baseHead, `the tag was answered while the base waited: ${soon.join('\n')}`);
    assert.deepEqual(soon.filter((l) => l.includes('/app/early/')), ['HEAD /v2/app/early/manifests/1 200'], soon.join('\n'));
    // Six seconds between the tag's answer and the push: asked again, and still not written.
    const late = await rebuild('6');
    assert.deepEqual(late.filter((l) => l.includes('/app/early/')), ['HEAD /v2/app/early/manifests/1 200', 'HEAD /v2/app/early/manifests/1 200'], late.join('\n'));
  });

  test('a rebuild that changed one layer asks only for its new blobs: the tag\'s manifests say which the repository holds', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const files = { Dockerfile: `FROM ${base}\nCOPY one.txt /one.txt\nCOPY two.txt /two.txt\n`, 'one.txt': 'one\n', 'two.txt': 'two\n' };
    const platforms = ['linux/amd64', 'linux/arm64'];
    const tags = [`${proxy.host}/app/edited:1`];
    const first = await buildContext(makeContext(files), { cacheDir, platforms, push: true, tags, sourceDateEpoch: '0' });
    const before = proxy.requests.length;
    const second = await buildContext(makeContext({ ...files, 'two.txt': 'two, edited\n' }), { cacheDir, platforms, push: true, tags, sourceDateEpoch: '0' });
    assert.notEqual(second.result.digest, first.result.digest);
    const seen = proxy.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    // The new COPY layer (the same bytes on both platforms) and each platform's new config, nothing
    // of the base or of one.txt.
    const asked = new Set(seen.filter((l) => /^HEAD \/v2\/app\/edited\/blobs\/sha256:/.test(l)).map((l) => l.split('/blobs/')[1]));
    assert.equal(asked.size, 3, seen.join('\n'));
    const m = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/edited:1`])).stdout) as { manifests: Array<{ digest: string }> };
    for (const d of m.manifests) {
      const img = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/edited@${d.digest}`])).stdout) as { config: { digest: string }; layers: Array<{ digest: string }> };
      assert.ok(asked.has(img.config.digest) && asked.has(img.layers.at(-1)!.digest), `${d.digest}: its new blobs were asked for`);
      assert.ok(img.layers.slice(0, -1).every((l) => !asked.has(l.digest)), `${d.digest}: a blob the old tag held was asked for again`);
    }
    // Whole in the repository: skopeo copies every platform out.
    const out = mkdtempSync(join(tmpdir(), 'slipway-push-out-'));
    dirs.push(out);
    await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/app/edited:1`, `oci:${out}:x`]);
  });

  test('with provenance, each platform\'s statement goes into an upload started as the build began; a failed build ends the uploads it started', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'app\n' });
    const platforms = ['linux/amd64', 'linux/arm64'];
    const tags = [`${proxy.host}/app/attested:1`];
    await buildContext(ctx, { cacheDir, platforms, push: true, tags, attest: ['type=provenance'], sourceDateEpoch: '0' });
    const before = proxy.requests.length;
    await buildContext(ctx, { cacheDir, platforms, push: true, tags, attest: ['type=provenance'], sourceDateEpoch: '0' });
    const seen = proxy.requests.slice(before).map((r) => `${r.method} ${r.path}`);
    const posts = seen.map((l, i) => [l, i] as const).filter(([l]) => /^POST \/v2\/app\/attested\/blobs\/uploads\/$/.test(l));
    assert.equal(posts.length, 2, seen.join('\n'));
    // Started before the push: ahead of its first request, the tag's HEAD.
    const firstHead = seen.findIndex((l) => l === 'HEAD /v2/app/attested/manifests/1');
    assert.ok(posts.every(([, i]) => i < firstHead), seen.join('\n'));
    assert.equal(seen.filter((l) => /^PUT \/v2\/app\/attested\/blobs\/uploads\/.*digest=sha256/.test(l)).length, 2, seen.join('\n'));

    const failedFrom = proxy.requests.length;
    const bad = makeContext({ Dockerfile: `FROM ${base}\nCOPY missing.txt /m\n` });
    await assert.rejects(buildContext(bad, { cacheDir, platforms, push: true, tags, attest: ['type=provenance'] }));
    const failed = proxy.requests.slice(failedFrom).map((r) => `${r.method} ${r.path}`);
    assert.equal(failed.filter((l) => l.startsWith('POST /v2/app/attested/blobs/uploads/')).length, 2, failed.join('\n'));
    assert.equal(failed.filter((l) => l.startsWith('DELETE /v2/app/attested/blobs/uploads/')).length, 2, failed.join('\n'));
  });

  test('a layer still being sent when the build ends unused is stopped, its upload cancelled, nothing published', async () => {
    const client = new RegistryClient();
    try {
      const port = registryPort(client);
      const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${'ab'.repeat(32)}`, size: 64 << 20 };
      let yielded = 0;
      // A source that never ends on its own: only stopping it lets release() return.
      const endless = async function* () { for (;;) { yielded++; yield Buffer.alloc(64 << 10); await new Promise((r) => setTimeout(r, 20)); } };
      const from = proxy.requests.length;
      const staged = port.stageBlob!(`${proxy.host}/app/stopped`, desc, endless);
      while (yielded < 3) await new Promise((r) => setTimeout(r, 10));
      await staged.release();
      await staged.sent;
      const seen = proxy.requests.slice(from).map((r) => `${r.method} ${r.path}`);
      assert.ok(seen.some((l) => l.startsWith('PATCH /v2/app/stopped/blobs/uploads/')), seen.join('\n'));
      assert.ok(seen.some((l) => l.startsWith('DELETE /v2/app/stopped/blobs/uploads/')), `the upload was cancelled: ${seen.join('\n')}`);
      assert.ok(!seen.some((l) => l.startsWith('PUT ')), seen.join('\n'));
    } finally {
      await client.close();
    }
  });

  test('a manifest the registry refuses for a missing blob (another pusher\'s upload of it at that moment): its blobs are asked for again, then the PUT', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'refused once\n' });
    proxy.addFault({ method: 'PUT', path: /^\/v2\/app\/refused\/manifests\/sha256:/, fault: { status: 400, code: 'MANIFEST_BLOB_UNKNOWN' } });
    const from = proxy.requests.length;
    const built = await buildContext(ctx, { cacheDir, push: true, tags: [`${proxy.host}/app/refused:1`] });
    const seen = proxy.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
    const puts = seen.map((l, i) => [l, i] as const).filter(([l]) => /^PUT \/v2\/app\/refused\/manifests\/sha256:/.test(l));
    assert.equal(puts.length, 2, seen.join('\n'));
    assert.match(puts[0][0], / 400$/);
    // Between the two PUTs every blob of the image was asked for again (HEAD: each is there).
    const between = seen.slice(puts[0][1] + 1, puts[1][1]).filter((l) => /^HEAD \/v2\/app\/refused\/blobs\//.test(l));
    assert.ok(between.length >= 2, seen.join('\n'));
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/refused:1`]);
    assert.equal(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, built.result.digest);
  });

  test('a merge record the registry refuses for a missing blob (the other job committing the same blob): its blobs are asked for again, then the record', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /app.txt\n`, 'app.txt': 'recorded\n' });
    const record = '/v2/app/recorded/manifests/slipway-merge-rec1-linux-amd64';
    proxy.addFault({ method: 'PUT', path: new RegExp(`^${record}$`), fault: { status: 400, code: 'MANIFEST_BLOB_UNKNOWN' } });
    const from = proxy.requests.length;
    const built = await buildContext(ctx, { cacheDir, push: true, tags: [`${proxy.host}/app/recorded:1`], platforms: ['linux/amd64'], mergePlatforms: 'linux/amd64', mergeId: 'rec1' });
    const seen = proxy.requests.slice(from).map((r) => `${r.method} ${r.path} ${r.status}`);
    // (A third PUT of the record, after the index, is its removal: a placeholder, then DELETE.)
    const puts = seen.map((l, i) => [l, i] as const).filter(([l]) => l.startsWith(`PUT ${record} `));
    assert.ok(puts.length >= 2, seen.join('\n'));
    assert.match(puts[0][0], / 400$/);
    assert.match(puts[1][0], / 201$/);
    assert.ok(puts[1][1] < seen.indexOf('PUT /v2/app/recorded/manifests/1 201'), `recorded before the index went under the tag: ${seen.join('\n')}`);
    const between = seen.slice(puts[0][1] + 1, puts[1][1]).filter((l) => /^HEAD \/v2\/app\/recorded\/blobs\//.test(l));
    assert.ok(between.length >= 2, seen.join('\n'));
    // The one platform of the set is recorded, so this job wrote the index under the tag.
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/app/recorded:1`]);
    assert.equal(`sha256:${createHash('sha256').update(stdout).digest('hex')}`, built.result.digest);
  });

  test('large layers the image holds go up while later steps run and only the push publishes them; a build that fails later publishes none', { skip: runMissing() }, async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const tags = [`${proxy.host}/app/staged:1`];
    const uploadId = (l: string) => /\/blobs\/uploads\/([^?]+)/.exec(l)?.[1];
    const ctx = makeContext({
      Dockerfile: `FROM ${base} AS tool\nRUN head -c 1500000 /dev/urandom > /tool\nFROM ${base}\nRUN head -c 1500000 /dev/urandom > /one\nRUN echo small > /small\n` +
        `COPY --from=tool /tool /tool\nRUN sleep 1 && head -c 1500000 /dev/urandom > /two\n`,
    });
    const from = proxy.requests.length;
    await buildContext(ctx, { cacheDir, push: true, tags });
    const seen = proxy.requests.slice(from).map((r) => `${r.method} ${r.path}`);
    const patches = seen.map((l, i) => [l, i] as const).filter(([l]) => /^PATCH \/v2\/app\/staged\/blobs\/uploads\//.test(l));
    // The final stage's three large layers: not its small one (it goes with the push), nor the tool
    // stage's (the image holds only its /tool file, in the COPY's layer).
    assert.equal(patches.length, 3, seen.join('\n'));
    // Each sent as its step wrote it: chunked, its length (and digest) not yet known.
    const sentAsWritten = proxy.requests.slice(from).filter((r) => r.method === 'PATCH' && r.path.startsWith('/v2/app/staged/blobs/uploads/'));
    assert.ok(sentAsWritten.every((r) => r.chunked), 'the PATCHes are chunked');
    const firstHead = seen.findIndex((l) => /^HEAD \/v2\/app\/staged\/manifests\/sha256:/.test(l));
    assert.ok(firstHead > 0 && patches.slice(0, 2).every(([, i]) => i < firstHead), `sent before the push began: ${seen.join('\n')}`);
    // Each one published by the push's PUT into the same upload, after the manifest HEAD.
    for (const [l] of patches) {
      const put = seen.findIndex((x) => x.startsWith('PUT ') && uploadId(x) === uploadId(l) && x.includes('digest=sha256'));
      assert.ok(put > firstHead, `${l} committed by the push: ${seen.join('\n')}`);
    }
    const out = mkdtempSync(join(tmpdir(), 'slipway-push-out-'));
    dirs.push(out);
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reg.host}/app/staged:1`, `oci:${out}:x`]);

    const failedFrom = proxy.requests.length;
    const bad = makeContext({ Dockerfile: `FROM ${base}\nRUN head -c 1500000 /dev/urandom > /other\nRUN sleep 1 && exit 3\n` });
    await assert.rejects(buildContext(bad, { cacheDir, push: true, tags: [`${proxy.host}/app/staged-failed:1`] }), /exit code: 3/);
    const failed = proxy.requests.slice(failedFrom).map((r) => `${r.method} ${r.path}`);
    const sent = failed.filter((l) => l.startsWith('PATCH /v2/app/staged-failed/blobs/uploads/'));
    assert.equal(sent.length, 1, failed.join('\n'));
    assert.ok(failed.some((l) => l.startsWith('DELETE ') && uploadId(l) === uploadId(sent[0])), `the upload was cancelled: ${failed.join('\n')}`);
    assert.ok(!failed.some((l) => l.startsWith('PUT ')), `nothing published: ${failed.join('\n')}`);
  });

  test('a COPY onto a base reads the base layers\' index from the cache dir: a later build, its blobs gone, downloads no base layer', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-push-'));
    dirs.push(cacheDir);
    const ctx = makeContext({ Dockerfile: `FROM ${base}\nCOPY app.txt /tmp/app.txt\n`, 'app.txt': 'one\n' });
    const tag = `${proxy.host}/app/indexed:1`;
    await buildContext(ctx, { cacheDir, push: true, tags: [tag], platforms: ['linux/amd64'] });
    const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', '--override-arch', 'amd64', `docker://${reg.host}/library/busybox:1`]);
    const baseLayers = (JSON.parse(stdout) as { Layers: string[] }).Layers;
    assert.ok(baseLayers.length > 0);
    assert.ok(readdirSync(join(cacheDir, 'views')).length >= baseLayers.length, 'an index per layer read');
    rmSync(join(cacheDir, 'blobs'), { recursive: true, force: true });
    writeFileSync(join(ctx, 'app.txt'), 'two\n');
    const before = proxy.requests.length;
    const again = await buildContext(ctx, { cacheDir, push: true, tags: [tag], platforms: ['linux/amd64'] });
    assert.equal(again.result.steps.run, 1);
    const fetched = proxy.requests.slice(before).filter((r) => r.method === 'GET' && baseLayers.some((d) => r.path.endsWith(`/blobs/${d}`)));
    assert.deepEqual(fetched, [], 'no base layer was downloaded to plan the COPY');
  });
});
