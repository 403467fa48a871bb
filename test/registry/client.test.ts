// The registry client against the real distribution registry, in every auth mode and with the
// faults a network produces (through the recording proxy).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWriteStream, readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient, parseReference, withTarget, type Reference, type RegistryClientOptions } from '../../src/registry/index.ts';
import { openSink, openSource, transfer } from '../../src/transport/index.ts';
import { parsePlatform, sha256, type Manifest } from '../../src/oci/index.ts';
import { UserError } from '../../src/errors.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { startProxy } from '../harness/proxy.ts';
import { pushFixture, fixturesMissing, skopeoRawManifest } from '../harness/fixtures.ts';

/** A registry-to-registry copy through the one copy loop (the transport's), as `slipway copy` runs it. */
async function copyImage(client: RegistryClient, from: Reference, to: Reference) {
  const src = await openSource({ transport: 'docker', ref: from, text: from.toString() }, client);
  return transfer(src, await openSink([{ transport: 'docker', ref: to, text: to.toString() }], client));
}


const skip = registryMissing() ?? fixturesMissing();

function clientFor(reg: TestRegistry, extra: RegistryClientOptions = {}): RegistryClient {
  return new RegistryClient({ dockerConfigPath: reg.dockerConfig(), ca: reg.caFile ? readFileSync(reg.caFile) : undefined, retries: 3, ...extra });
}

async function pushAndPull(reg: TestRegistry, client: RegistryClient): Promise<number> {
  const fx = await pushFixture(reg, 'multiarch', 'auth/multi:1');
  if (reg.tokenServer) reg.tokenServer.requests.length = 0; // count only our own token fetches
  const ref = parseReference(fx.ref);
  const img = await client.resolveImage(ref, parsePlatform('linux/arm64/v8'));
  assert.equal(img.config.architecture, 'arm64');
  assert.equal(img.indexDigest, fx.digest);
  // push: a new blob + a manifest that reuses the fixture's config, by tag, then read back
  const data = Buffer.from('slipway layer ' + Math.random());
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(data), size: data.length };
  const dst = parseReference(`${reg.host}/auth/pushed:v1`);
  assert.equal(await client.pushBlob(dst, layer, () => Readable.from([data])), 'uploaded');
  assert.equal(await client.pushBlob(dst, layer, () => Readable.from([data])), 'exists');
  assert.equal(await client.pushBlob(dst, img.manifest.config, () => client.fetchBlob(ref, img.manifest.config), { mountFrom: [ref] }), 'mounted');
  const manifest: Manifest = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: img.manifest.config, layers: [layer] };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const digest = await client.putManifest(dst, bytes, manifest.mediaType!);
  const back = await client.getManifest(dst);
  assert.equal(back.digest, digest);
  assert.deepEqual(back.bytes, bytes);
  const tokenFetches = reg.tokenServer?.requests.length ?? 0;
  assert.deepEqual(await skopeoRawManifest(reg, dst.toString()), bytes);
  return tokenFetches;
}

for (const mode of [{ auth: 'none' }, { auth: 'basic' }, { auth: 'token' }, { tls: true }] as const) {
  test(`auth mode ${JSON.stringify(mode)}: pull through an index, push, mount`, { skip }, async () => {
    const reg = await startRegistry(mode);
    const client = clientFor(reg);
    try {
      const tokenFetches = await pushAndPull(reg, client);
      if (reg.tokenServer) {
        // Tokens are cached per scope (a push token serves pulls too): pull, push, mount = 3 fetches.
        assert.equal(tokenFetches, 3, `token fetches: ${JSON.stringify(reg.tokenServer.requests)}`);
        assert.ok(reg.tokenServer.requests.every((r) => r.account === 'slipway'));
        assert.ok(reg.tokenServer.requests.some((r) => r.scopes.includes('repository:auth/pushed:pull,push') && r.scopes.includes('repository:auth/multi:pull')), 'mount asks for pull on the source');
      }
    } finally {
      await client.close();
      await reg.stop();
    }
  });
}

test('a loopback registry with TLS and no CA given: found after the plain-http probe, over https unverified', { skip }, async () => {
  const reg = await startRegistry({ tls: true });
  try {
    const fx = await pushFixture(reg, 'amd64', 'tls/img:1');
    const client = new RegistryClient({ retries: 0 }); // no CA: the certificate cannot be verified
    const m = await client.getManifest(parseReference(fx.ref));
    assert.equal(m.digest, fx.digest);
    await client.close();
  } finally {
    await reg.stop();
  }
});

test('a plain-http loopback registry is not probed: the first request is the real one; a 400 is probed, sent again and reported', { skip }, async () => {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const seen = () => proxy.requests.splice(0).map((r) => `${r.method} ${r.path} ${r.status}`);
  try {
    const fx = await pushFixture(reg, 'amd64', 'plain/img:1');
    const client = new RegistryClient({ retries: 0 });
    const m = await client.getManifest(parseReference(fx.ref.replace(reg.host, proxy.host)));
    assert.equal(m.digest, fx.digest);
    assert.deepEqual(seen(), ['GET /v2/plain/img/manifests/1 200'], 'no GET /v2/ before the manifest');
    await client.close();
    // A 400 to the first request might be a TLS server's answer to plain http: the host is probed
    // (GET /v2/ says it is http), the request goes again, and its own 400 is what the caller gets.
    const fresh = new RegistryClient({ retries: 0 });
    await assert.rejects(fresh.putManifest(parseReference(`${proxy.host}/plain/img:bad`), Buffer.from('{"schemaVersion":2,"layers":"no"}'), 'application/vnd.oci.image.manifest.v1+json'), /400/);
    assert.deepEqual(seen(), ['PUT /v2/plain/img/manifests/bad 400', 'GET /v2/ 200', 'PUT /v2/plain/img/manifests/bad 400']);
    await fresh.close();
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

test('a blob sent as it is written: one chunked PATCH under way before its last bytes exist, published by the push; a length that differs is cancelled', { skip }, async () => {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const client = new RegistryClient({ retries: 0 });
  try {
    const pieces = Array.from({ length: 4 }, () => randomBytes(512 << 10));
    const whole = Buffer.concat(pieces);
    const desc = { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(whole), size: whole.length };
    let lastPieceAt = 0;
    // The writer's side: a piece every 40 ms, the descriptor known once the last is out.
    let written!: (d: typeof desc) => void;
    const final = new Promise<typeof desc>((resolve) => { written = resolve; });
    const growing = async function* () {
      for (const p of pieces) {
        await new Promise((r) => setTimeout(r, 40));
        lastPieceAt = performance.now();
        yield p;
      }
      written(desc);
    };
    const ref = parseReference(`${proxy.host}/grow/blob:1`);
    const staged = client.stageGrowingBlob(ref, () => Readable.from(growing()), final);
    assert.equal((await staged)?.kind, 'sent');
    assert.equal(await client.pushBlob(ref, desc, () => Readable.from([whole]), { staged }), 'uploaded');
    const seen = proxy.requests.splice(0);
    const patch = seen.find((r) => r.method === 'PATCH');
    assert.ok(patch?.chunked, 'the PATCH is chunked: its length was not known');
    assert.ok(patch.at < lastPieceAt, 'the PATCH began before the last piece was written');
    assert.deepEqual(seen.filter((r) => r.method === 'HEAD').map((r) => r.path), [], 'no HEAD: the digest was not known when it started');
    assert.equal(seen.filter((r) => r.method === 'PUT' && r.path.includes(`digest=${encodeURIComponent(desc.digest)}`)).length, 1, 'published by one PUT');
    assert.deepEqual(await client.fetchBlobBytes(parseReference(`${reg.host}/grow/blob:1`), desc), whole);

    // A blob that ends otherwise than its descriptor says: nothing published, the upload cancelled.
    const short = client.stageGrowingBlob(ref, () => Readable.from(pieces.slice(0, 2)), Promise.resolve({ ...desc, digest: sha256(Buffer.from('other')) }));
    assert.equal(await short, undefined);
    const after = proxy.requests.splice(0).map((r) => r.method);
    assert.ok(after.includes('DELETE') && !after.includes('PUT'), after.join(' '));
  } finally {
    await client.close();
    await proxy.stop();
    await reg.stop();
  }
});

test('auth: wrong password, anonymous push and an identity token are each handled', { skip }, async () => {
  const reg = await startRegistry({ auth: 'token' });
  try {
    const ref = parseReference(`${reg.host}/private/x:1`);
    const wrong = new RegistryClient({ credentials: { [reg.host]: { username: 'slipway', password: 'nope' } }, retries: 0 });
    await assert.rejects(wrong.getManifest(ref), (e: unknown) => e instanceof UserError && /refused the configured credentials/.test(e.message));
    await wrong.close();
    const anon = new RegistryClient({ retries: 0 });
    await assert.rejects(anon.getManifest(ref), (e: unknown) => e instanceof UserError && /denied GET .*401/.test(e.message));
    await anon.close();
    reg.tokenServer!.identityTokens['refresh-123'] = 'slipway';
    const dir = mkdtempSync(join(tmpdir(), 'slipway-dockercfg-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { identitytoken: 'refresh-123' } } }));
    const viaToken = new RegistryClient({ dockerConfigPath: join(dir, 'config.json') });
    await assert.rejects(viaToken.getManifest(ref), /image not found: .*private\/x:1/);
    assert.equal(reg.tokenServer!.requests.at(-1)!.grantType, 'refresh_token');
    await viaToken.close();
    rmSync(dir, { recursive: true });
  } finally {
    await reg.stop();
  }
});

test('redirect to blob storage on another host does not carry Authorization', { skip }, async () => {
  const reg = await startRegistry({ auth: 'basic' });
  const storage = await startProxy(reg.url, { hostname: 'localhost', injectBasicAuth: { username: reg.username!, password: reg.password! } });
  const front = await startProxy(reg.url);
  const client = new RegistryClient({ credentials: { [front.host]: { username: reg.username!, password: reg.password! } } });
  try {
    const fx = await pushFixture(reg, 'amd64', 'redir/img:1');
    const m = JSON.parse((await skopeoRawManifest(reg, fx.ref)).toString()) as Manifest;
    front.addFault({ method: 'GET', path: /\/blobs\/sha256:/, times: 10, fault: { redirectTo: storage.url } });
    const ref = parseReference(`${front.host}/redir/img:1`);
    const img = await client.resolveImage(ref, parsePlatform('linux/amd64'));
    const layer = await client.fetchBlobBytes(ref, m.layers[0]);
    assert.equal(sha256(layer), m.layers[0].digest);
    assert.equal(img.config.architecture, 'amd64');
    const redirected = front.requests.filter((r) => r.fault === 'redirect');
    assert.ok(redirected.length >= 2 && redirected.every((r) => r.authorization?.startsWith('Basic ')), 'the registry got credentials');
    assert.ok(storage.requests.length >= 2, 'blob reads went to storage');
    assert.ok(storage.requests.every((r) => r.authorization === undefined), 'storage never saw our Authorization');
  } finally {
    await client.close();
    await front.stop();
    await storage.stop();
    await reg.stop();
  }
});

test('429 with Retry-After is waited out and retried', { skip }, async () => {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const client = new RegistryClient({ retries: 3 });
  try {
    await pushFixture(reg, 'amd64', 'limit/img:1');
    proxy.addFault({ method: 'GET', path: /\/manifests\/1$/, times: 2, fault: { status: 429, retryAfter: '1' } });
    const started = Date.now();
    const m = await client.getManifest(parseReference(`${proxy.host}/limit/img:1`));
    assert.ok(Date.now() - started >= 1900, `waited ${Date.now() - started} ms for two Retry-After: 1`);
    assert.equal(proxy.requests.filter((r) => r.path.endsWith('/manifests/1')).map((r) => r.status).join(','), '429,429,200');
    assert.ok(m.digest.startsWith('sha256:'));
    // More 429s than retries: a clear error, not a hang.
    proxy.addFault({ method: 'GET', path: /\/manifests\/1$/, times: 10, fault: { status: 429, retryAfter: '0' } });
    await assert.rejects(client.getManifest(parseReference(`${proxy.host}/limit/img:1`)), /answered 429/);
  } finally {
    await client.close();
    await proxy.stop();
    await reg.stop();
  }
});

test('a connection dropped mid-blob (200 MB layer) resumes with Range and verifies', { skip }, async () => {
  const reg = await startRegistry();
  const proxy = await startProxy(reg.url);
  const client = new RegistryClient({ retries: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'slipway-resume-'));
  try {
    const fx = await pushFixture(reg, 'big', 'big/img:1');
    const m = JSON.parse((await skopeoRawManifest(reg, fx.ref)).toString()) as Manifest;
    const big = m.layers.reduce((a, b) => (a.size > b.size ? a : b));
    assert.ok(big.size >= 200e6);
    proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${big.digest}`), fault: { dropAfterBytes: 50 << 20 } });
    const file = join(dir, 'blob');
    await pipeline(client.fetchBlob(parseReference(`${proxy.host}/big/img:1`), big), createWriteStream(file));
    const h = createHash('sha256');
    for await (const c of (await import('node:fs')).createReadStream(file)) h.update(c as Buffer);
    assert.equal('sha256:' + h.digest('hex'), big.digest);
    const gets = proxy.requests.filter((r) => r.path.includes(big.digest));
    assert.equal(gets.length, 2);
    assert.match(gets[1].range ?? '', /^bytes=\d+-$/);
    assert.ok(Number(/\d+/.exec(gets[1].range!)![0]) > 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await client.close();
    await proxy.stop();
    await reg.stop();
  }
});

test('a corrupted blob fails the copy with a clear error and pushes nothing, whole or streamed (the upload trusts the source to verify)', { skip }, async () => {
  const reg = await startRegistry();
  const dest = await startRegistry();
  const proxy = await startProxy(reg.url);
  try {
    const fx = await pushFixture(reg, 'amd64', 'corrupt/img:1');
    const m = JSON.parse((await skopeoRawManifest(reg, fx.ref)).toString()) as Manifest;
    assert.ok(m.layers[0].size > 64 << 10);
    // One PUT with the bytes read whole, and one PATCH streaming them as they arrive.
    for (const [name, settings] of [['whole', {}], ['streamed', { monolithicMaxBytes: 64 << 10 }]] as const) {
      const client = new RegistryClient({ retries: 1, ...settings });
      try {
        proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${m.layers[0].digest}`), times: 5, fault: { corruptBody: true } });
        const dst = parseReference(`${dest.host}/copy/${name}:1`);
        await assert.rejects(copyImage(client, parseReference(`${proxy.host}/corrupt/img:1`), dst),
          (e: unknown) => e instanceof UserError && new RegExp(`blob ${m.layers[0].digest} .* failed verification`).test(e.message));
        assert.equal(await client.headManifest(dst), undefined, `${name}: no manifest pushed`);
        assert.equal(await client.hasBlob(dst, m.layers[0].digest), false, `${name}: no corrupt blob committed`);
      } finally {
        await client.close();
      }
    }
  } finally {
    await proxy.stop();
    await reg.stop();
    await dest.stop();
  }
});

test('unknown platform lists what is there; missing tag says so', { skip }, async () => {
  const reg = await startRegistry();
  const client = new RegistryClient();
  try {
    const fx = await pushFixture(reg, 'multiarch', 'plat/img:1');
    await assert.rejects(client.resolveImage(parseReference(fx.ref), parsePlatform('linux/s390x')),
      (e: unknown) => e instanceof UserError && /no image for platform linux\/s390x \(available: linux\/amd64, linux\/arm64\)/.test(e.message));
    await assert.rejects(client.resolveImage(parseReference(`${reg.host}/plat/img:nope`)),
      (e: unknown) => e instanceof UserError && /image not found: .*plat\/img:nope .*tag "nope"/.test(e.message));
    const v2 = await pushFixture(reg, 'v2s2', 'plat/v2:1');
    await assert.rejects(client.resolveImage(parseReference(v2.ref), parsePlatform('linux/arm64')), /single-platform image for linux\/amd64, not linux\/arm64/);
    const img = await client.resolveImage(withTarget(parseReference(v2.ref), { digest: v2.digest }), parsePlatform('linux/amd64'));
    assert.equal(img.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(img.manifestDigest, v2.digest);
  } finally {
    await client.close();
    await reg.stop();
  }
});
