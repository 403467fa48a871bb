// The step cache key formats are the on-disk and registry-cache contract: each is pinned here, so a
// change to any of them fails this test until LAYER_FORMAT (or the pin) is changed on purpose.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ExpandedInstruction, Mount } from '../../src/dockerfile/index.ts';
import {
  compressedVariantKey, copyContentKey, copyFromStateKey, epochVariantKey, imageKey, LAYER_FORMAT, layerRecordKey, metadataKey, mountKeyPart, namedContextKey, runKey, scratchKey, workdirKey, type CopyKeyFlags,
} from '../../src/engine/keys.ts';

const platform = { os: 'linux', architecture: 'arm64' };
const parent = 'p'.repeat(64);
const flags: CopyKeyFlags = { op: 'COPY', dest: '/app/', workdir: '/srv', chown: '1:2', chmod: undefined, link: false, parents: false, exclude: ['*.md'] };
const run = { kind: 'RUN', args: ['/bin/sh', '-c', 'make'], network: 'default', security: 'sandbox', mounts: [], inlineFiles: [] } as unknown as Extract<ExpandedInstruction, { kind: 'RUN' }>;
const cacheMount = { type: 'cache', target: '/root/.cache', source: '', readOnly: false, id: 'go', mode: 0o755, uid: 0, gid: 0, sharing: 'shared' } as unknown as Mount;
const runParts = { parent, instruction: run, env: ['PATH=/bin'], user: '', workdir: '/', mounts: [mountKeyPart(cacheMount)], platform };
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

test('the layer format is 4 (wave 1 keys had none; 3: COPY/ADD conformance fixes; 4: stored random blocks)', () => assert.equal(LAYER_FORMAT, 4));

test('state keys: scratch and image are sha256 of their canonical JSON', () => {
  assert.equal(scratchKey(platform), sha('{"scratch":"linux/arm64"}'));
  assert.equal(scratchKey(platform), 'd557d71703faf826889565f28c08e614caefe14ca85d73a1d37bca3db7d2d8b5');
  assert.equal(imageKey('sha256:' + 'a'.repeat(64)), sha(`{"image":"sha256:${'a'.repeat(64)}"}`));
  assert.equal(imageKey('sha256:' + 'a'.repeat(64)), '77cde23a12854ac830545e4279f73253c2d04901afcc6f220476341a9217121d');
});

test('metadata and WORKDIR keys', () => {
  assert.equal(metadataKey(parent, { kind: 'ENV', pairs: [{ key: 'A', value: '1' }] } as unknown as ExpandedInstruction, 'ENV A=1'), '9190ecacc9fa9930c1d7ea95a9214ddcbea98e3cd2315b0e513f7a3e911f463d');
  assert.equal(workdirKey({ parent, path: '/srv', user: 'app' }), '546c14b867e2d5b06b4e9e7dd02f17030aaa36f81bf8ade0397dc58a0e44dfbf');
});

test('COPY keys: --from a state by its key and paths; content by checksum; every flag counts', () => {
  assert.equal(copyFromStateKey(parent, 's'.repeat(64), ['/out/'], flags), 'c6024ab0418f2e3b8a3565d6a82f8776a5921d85ae074ee75b3c200a5a064ff7');
  const content = copyContentKey(parent, 'sha256:' + 'c'.repeat(64), flags);
  assert.equal(content, 'eb0cb6510347a83b0ebedecc6cfff267e5f36595ccd6b48cc3c2ce866eb04552');
  const variants: Partial<CopyKeyFlags>[] = [{ op: 'ADD' }, { dest: '/x/' }, { workdir: '/' }, { chown: undefined }, { chmod: '755' }, { link: true }, { parents: true }, { exclude: [] }];
  const keys = variants.map((v) => copyContentKey(parent, 'sha256:' + 'c'.repeat(64), { ...flags, ...v }));
  assert.equal(new Set([content, ...keys]).size, variants.length + 1);
});

test('RUN key and its mount parts; every part counts', () => {
  assert.equal(JSON.stringify(mountKeyPart(cacheMount)), '{"type":"cache","target":"/root/.cache","source":"","from":null,"readOnly":false,"id":"go","mode":493,"uid":0,"gid":0,"env":null}');
  assert.deepEqual(mountKeyPart(cacheMount, 'sha256:d'), { ...(mountKeyPart(cacheMount) as object), checksum: 'sha256:d' });
  const key = runKey(runParts);
  assert.equal(key, 'fde9b24ebc5f69537f0088ac25fff5ddb2254798f7ff9539728c4cd5ac7bbb5f');
  const changed = [
    runKey({ ...runParts, parent: 'q'.repeat(64) }), runKey({ ...runParts, env: ['PATH=/usr/bin'] }), runKey({ ...runParts, user: 'app' }),
    runKey({ ...runParts, workdir: '/src' }), runKey({ ...runParts, mounts: [] }), runKey({ ...runParts, platform: { os: 'linux', architecture: 'amd64' } }),
    runKey({ ...runParts, instruction: { ...run, args: ['/bin/sh', '-c', 'make all'] } }), runKey({ ...runParts, instruction: { ...run, network: 'none' } }),
    runKey({ ...runParts, hostname: 'builder' }), runKey({ ...runParts, instruction: { ...run, security: 'insecure' } }),
    runKey({ ...runParts, devices: { requested: [{ name: 'example.com/gpu', required: false }], resolved: [] } }),
    runKey({ ...runParts, devices: { requested: [{ name: 'example.com/gpu', required: false }], resolved: ['example.com/gpu=0'] } }),
  ];
  assert.equal(new Set([key, ...changed]).size, changed.length + 1);
  assert.equal(runKey({ ...runParts, devices: undefined }), key, 'no --device: the key is as before');
  assert.equal(runKey({ ...runParts, devices: { requested: [{ name: 'example.com/gpu', required: true }], resolved: ['example.com/gpu=0'] } }), 'b2b18629758a06b527362280730ec0086f19a139cb09762669d61e5b923cbae5');
});

test('record keys: salted with the layer format and the media type flavour; epoch variants', () => {
  assert.equal(layerRecordKey(parent, false), sha(`{"dockerMediaTypes":false,"format":${LAYER_FORMAT},"step":"${parent}"}`));
  assert.equal(layerRecordKey(parent, false), '5d8bb15d1dcb7f2153330d230b922af3f10e16f47d2393833ace62735d12625a');
  assert.equal(layerRecordKey(parent, true), '43a1cc2f65c920c8b64c7094459110478a84f8c95925b006a9e8255d45735722');
  assert.equal(epochVariantKey('r'.repeat(64), 1700000000), '05788e70eec495ec72c9bceeaeb458c7b6589587b411ba985fe651a42f97ca7f');
});

test('compression variants: by diffID, compression and level, salted with the layer format', () => {
  const diffID = 'sha256:' + 'd'.repeat(64);
  assert.equal(compressedVariantKey(diffID, 'zstd', 3), sha(`{"compression":"zstd","diffID":"${diffID}","format":${LAYER_FORMAT},"level":3}`));
  assert.equal(compressedVariantKey(diffID, 'zstd', 3), '83bc678d0e4c61ddbf97ee83bfb8d76171ecdbf87ba96efe894a2582d56d783d');
  assert.equal(compressedVariantKey(diffID, 'gzip', 6), '53f97ddfb0c7c611e77995e25106d7c967af3d69f2726d118d4b446822d11e32');
  assert.notEqual(compressedVariantKey(diffID, 'zstd', 19), compressedVariantKey(diffID, 'zstd', 3));
});

test('a named directory context as a stage: keyed by its files checksum and the platform', () => {
  const key = namedContextKey('sha256:' + 'c'.repeat(64), platform);
  assert.equal(key, sha(`{"namedContext":"sha256:${'c'.repeat(64)}","platform":"linux/arm64"}`));
  assert.equal(key, '41c0529992bc38206cd9bc884c563819c023f26a5adaf904c7b4cffd74f0513b');
  assert.notEqual(namedContextKey('sha256:' + 'c'.repeat(64), { os: 'linux', architecture: 'amd64' }), key);
});
