// Transient registry faults recover, through the fault proxy in front of the real registry: 5xx on
// an upload or the index PUT, a flipped byte in a blob or a manifest, an ECR-like upload dialogue,
// a refused mount, and servers that trickle or stall mid-body. Short timeouts come from options.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { RegistryClient, parseReference, type Reference, type RegistryClientOptions } from '../../src/registry/index.ts';
import { openSink, openSource, transfer } from '../../src/transport/index.ts';
import { sha256, type Index, type Manifest } from '../../src/oci/index.ts';
import { UserError } from '../../src/errors.ts';
import { startRegistry, registryMissing, type TestRegistry } from '../harness/registry.ts';
import { startProxy, type ProxyOptions, type RecordingProxy } from '../harness/proxy.ts';
import { pushFixture, fixturesMissing, skopeoRawManifest } from '../harness/fixtures.ts';

/** A registry-to-registry copy through the one copy loop (the transport's), as `slipway copy` runs it. */
async function copyImage(client: RegistryClient, from: Reference, to: Reference) {
  const src = await openSource({ transport: 'docker', ref: from, text: from.toString() }, client);
  return transfer(src, await openSink([{ transport: 'docker', ref: to, text: to.toString() }], client));
}


const skip = registryMissing() ?? fixturesMissing();
const fast: RegistryClientOptions = { retries: 3, timeoutMs: 1000 };

let src: TestRegistry;
let dst: TestRegistry;
let multiarch: string;
let amd64: string;
before(async () => {
  if (skip) return;
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  multiarch = (await pushFixture(src, 'multiarch', 'faults/multi:1')).ref;
  amd64 = (await pushFixture(src, 'amd64', 'faults/amd64:1')).ref;
});
after(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
});

async function withProxy(upstream: TestRegistry, o: ProxyOptions, body: (p: RecordingProxy, c: RegistryClient) => Promise<void>, extra: RegistryClientOptions = {}): Promise<void> {
  const proxy = await startProxy(upstream.url, o);
  const client = new RegistryClient({ ...fast, ...extra });
  try {
    await body(proxy, client);
  } finally {
    await client.close();
    await proxy.stop();
  }
}

/** Copies `from` (on src) to `to` (on dst) and checks skopeo reads back the same manifest bytes. */
async function copyAndCheck(client: RegistryClient, from: string, to: string): Promise<string> {
  const r = await copyImage(client, parseReference(from), parseReference(to));
  assert.deepEqual(await skopeoRawManifest(src, from), await skopeoRawManifest(dst, to.replace(/^[^/]+/, dst.host)));
  return r.digest;
}

const blobFor = (n: number): { data: Buffer; desc: { mediaType: string; digest: string; size: number } } => {
  const data = randomBytes(n);
  return { data, desc: { mediaType: 'application/octet-stream', digest: sha256(data), size: n } };
};

test('a 500 on a blob upload (PUT and streamed PATCH) restarts the upload; the blob arrives intact', { skip }, async () => {
  await withProxy(dst, {}, async (proxy, client) => {
    proxy.addFault({ method: 'PUT', path: /\/blobs\/uploads\//, times: 2, fault: { status: 500 } });
    await copyAndCheck(client, amd64, `${proxy.host}/faults/put500:1`);
    assert.equal(proxy.requests.filter((r) => r.fault === 'status 500').length, 2);
    const big = blobFor(300_000);
    proxy.addFault({ method: 'PATCH', path: /\/blobs\/uploads\//, times: 1, fault: { status: 500 } });
    const ref = parseReference(`${proxy.host}/faults/patch500:1`);
    assert.equal(await client.pushBlob(ref, big.desc, () => Readable.from([big.data])), 'uploaded');
    assert.deepEqual(await client.fetchBlobBytes(parseReference(`${dst.host}/faults/patch500:1`), big.desc), big.data);
  }, { monolithicMaxBytes: 64 << 10 });
});

test('a 500 on the index PUT after the platform manifests went in is re-PUT; the index is complete', { skip }, async () => {
  await withProxy(dst, {}, async (proxy, client) => {
    proxy.addFault({ method: 'PUT', path: /\/manifests\/1$/, times: 2, fault: { status: 500, retryAfter: '0' } });
    const digest = await copyAndCheck(client, multiarch, `${proxy.host}/faults/index500:1`);
    const index = JSON.parse((await skopeoRawManifest(dst, `${dst.host}/faults/index500:1`)).toString()) as Index;
    for (const m of index.manifests) assert.ok(await client.headManifest(parseReference(`${dst.host}/faults/index500@${m.digest}`)), `${m.digest} present`);
    assert.match(digest, /^sha256:/);
  });
});

test('one flipped byte in a downloaded blob or manifest is fetched again; corrupt bytes are never pushed', { skip }, async () => {
  await withProxy(src, {}, async (proxy, client) => {
    const m = JSON.parse((await skopeoRawManifest(src, amd64)).toString()) as Manifest;
    proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${m.layers[0].digest}`), times: 1, fault: { corruptBody: true } });
    proxy.addFault({ method: 'GET', path: /\/manifests\/1$/, times: 1, fault: { corruptBody: true } });
    const from = amd64.replace(src.host, proxy.host);
    const r = await copyImage(client, parseReference(from), parseReference(`${dst.host}/faults/flipped:1`));
    assert.equal(proxy.requests.filter((q) => q.fault === 'corrupt').length, 2);
    assert.deepEqual(await skopeoRawManifest(dst, `${dst.host}/faults/flipped:1`), await skopeoRawManifest(src, amd64));
    assert.equal(r.blobs.uploaded + r.blobs.mounted + r.blobs.exists, m.layers.length + 1);
    // Still refused when every attempt is corrupt.
    proxy.addFault({ method: 'GET', path: /\/manifests\/1$/, times: 10, fault: { corruptBody: true } });
    await assert.rejects(client.getManifest(parseReference(from)), (e: unknown) => e instanceof UserError && /does not match/.test(e.message));
  });
});

test('an ECR-like registry (201 to PATCH, Range stuck after two chunks) gets one streamed PATCH; a chunk-wanting one falls back to it', { skip }, async () => {
  const big = blobFor(1 << 20);
  await withProxy(dst, { ecrLike: true }, async (proxy, client) => {
    const ref = parseReference(`${proxy.host}/faults/ecr:1`);
    assert.equal(await client.pushBlob(ref, big.desc, () => Readable.from([big.data.subarray(0, 1000), big.data.subarray(1000)])), 'uploaded');
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, 1, 'one PATCH with the whole body');
    assert.equal(patches[0].status, 201);
    assert.deepEqual(await client.fetchBlobBytes(parseReference(`${dst.host}/faults/ecr:1`), big.desc), big.data);
  }, { monolithicMaxBytes: 64 << 10 });
  await withProxy(dst, { ecrLike: true, chunkMinLength: 128 << 10 }, async (proxy, client) => {
    const ref = parseReference(`${proxy.host}/faults/ecr-chunks:1`);
    assert.equal(await client.pushBlob(ref, big.desc, () => Readable.from([big.data])), 'uploaded');
    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    assert.equal(patches.length, 3 + 1, 'chunks until the Range stuck, then one streamed PATCH');
    assert.deepEqual(await client.fetchBlobBytes(parseReference(`${dst.host}/faults/ecr-chunks:1`), big.desc), big.data);
  }, { monolithicMaxBytes: 64 << 10, chunkBytes: 128 << 10 });
});

test('a registry that refuses cross-repository mounts gets an upload instead, without an error', { skip }, async () => {
  await withProxy(dst, {}, async (proxy, client) => {
    await copyAndCheck(client, amd64, `${dst.host}/faults/mount-src:1`);
    proxy.addFault({ method: 'POST', path: /mount=/, times: 100, fault: { status: 405 } });
    const r = await copyImage(client, parseReference(`${proxy.host}/faults/mount-src:1`), parseReference(`${proxy.host}/faults/mount-dst:1`));
    assert.equal(r.blobs.mounted, 0);
    assert.ok(r.blobs.uploaded > 0);
    assert.ok(proxy.requests.some((q) => q.fault === 'status 405'));
    assert.deepEqual(await skopeoRawManifest(dst, `${dst.host}/faults/mount-dst:1`), await skopeoRawManifest(src, amd64));
  });
});

test('a server that trickles 1 byte/s or stalls mid-body is cut off within the request timeout and retried', { skip }, async () => {
  await withProxy(src, {}, async (proxy, client) => {
    const m = JSON.parse((await skopeoRawManifest(src, amd64)).toString()) as Manifest;
    const from = parseReference(amd64.replace(src.host, proxy.host));
    proxy.addFault({ method: 'GET', path: /\/manifests\/1$/, times: 1, fault: { trickleBytesPerSec: 1 } });
    proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${m.config.digest}`), times: 1, fault: { trickleBytesPerSec: 1 } });
    proxy.addFault({ method: 'GET', path: new RegExp(`/blobs/${m.layers[0].digest}`), times: 1, fault: { stallAfterBytes: 100 } });
    const started = performance.now();
    const img = await client.resolveImage(from);
    const layer = Buffer.concat(await client.fetchBlob(from, m.layers[0]).toArray());
    const ms = performance.now() - started;
    assert.equal(sha256(layer), m.layers[0].digest);
    assert.equal(img.manifest.config.digest, m.config.digest);
    assert.equal(proxy.requests.filter((q) => q.fault?.startsWith('trickle') || q.fault?.startsWith('stall')).length, 3);
    // Three cut-offs of ~1 s each, plus the 1 s https probe of a new loopback host and backoffs;
    // trickled to the end, the manifest alone would take minutes.
    assert.ok(ms < 9000, `three cut-offs of a 1 s timeout took ${Math.round(ms)} ms`);
    const resumed = proxy.requests.filter((q) => q.path.includes(m.layers[0].digest));
    assert.match(resumed.at(-1)?.range ?? '', /^bytes=100-$/, 'the stalled blob resumes where it stopped');
  });
});
