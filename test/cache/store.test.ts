import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContentStore, LocalCache, cacheKey } from '../../src/cache/index.ts';
import { DigestMismatchError } from '../../src/cache/store.ts';
import { canonicalJson } from '../../src/cache/keys.ts';
import { sha256 } from '../../src/oci/index.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-cache-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('cacheKey: canonical JSON sorts keys at every depth and drops undefined', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, 'x'], c: null, e: undefined } }), '{"a":{"c":null,"d":[1,"x"]},"b":1}');
  assert.equal(cacheKey({ parent: 'p', instr: 'RUN x', args: { B: '2', A: '1' } }), cacheKey({ args: { A: '1', B: '2' }, instr: 'RUN x', parent: 'p' }));
  assert.notEqual(cacheKey({ instr: 'RUN x', platform: 'linux/amd64' }), cacheKey({ instr: 'RUN x', platform: 'linux/arm64' }));
  assert.match(cacheKey({}), /^[a-f0-9]{64}$/);
  assert.throws(() => cacheKey({ a: NaN }), /\$\.a is NaN/);
  assert.throws(() => cacheKey({ m: new Map() }), /\$\.m is a Map/);
});

test('ContentStore: put from buffer and stream, verify, read, size, list', async (t) => {
  const store = new ContentStore(await tempDir(t));
  const data = Buffer.from('hello layer');
  const a = await store.put(data);
  assert.deepEqual(a, { digest: sha256(data), size: data.length });
  assert.equal(await readFile(store.path(a.digest), 'utf8'), 'hello layer');
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const b = await store.put(Readable.from([big.subarray(0, 1000), big.subarray(1000)]), sha256(big));
  assert.equal(b.digest, sha256(big));
  assert.equal(await store.size(b.digest), big.length);
  assert.ok(await store.verify(b.digest));
  assert.deepEqual(await store.read(a.digest), data);
  assert.equal(await store.has(sha256('absent')), false);
  assert.deepEqual((await store.list()).map((x) => x.digest).sort(), [a.digest, b.digest].sort());
  // relative layout, nothing left in tmp
  assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
});

test('ContentStore: wrong expected digest stores nothing', async (t) => {
  const store = new ContentStore(await tempDir(t));
  const wrong = sha256('something else');
  await assert.rejects(store.put(Buffer.from('abc'), wrong), DigestMismatchError);
  await assert.rejects(store.put(Readable.from([Buffer.from('abc')]), wrong), DigestMismatchError);
  assert.deepEqual(await store.list(), []);
  assert.deepEqual(await readdir(join(store.root, 'tmp')), []);
});

test('ContentStore: a corrupt blob is a miss and is removed', async (t) => {
  const cache = new LocalCache(await tempDir(t));
  const layer = Buffer.from('layer bytes');
  const { digest, size } = await cache.store.put(layer);
  const key = cacheKey({ parent: null, instruction: 'RUN true' });
  await cache.record(key, { layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size, diffID: digest }, created: 'RUN true' });
  assert.equal((await cache.lookup(key, { verify: true }))?.created, 'RUN true');
  await writeFile(cache.store.path(digest), 'layer bytez'); // same size, different bytes
  assert.equal(await cache.store.read(digest), undefined);
  assert.equal(await cache.store.has(digest), false, 'read removed the corrupt blob');
  await writeFile(cache.store.path(digest), 'layer bytez');
  assert.equal(await cache.lookup(key, { verify: true }), undefined);
  assert.equal(await cache.store.has(digest), false);
  assert.equal(await cache.index.get(key), undefined, 'record of a corrupt blob dropped');
  // a key file that does not parse is a miss too
  const key2 = cacheKey('x');
  await cache.index.set(key2, { created: '2026-01-01T00:00:00Z' });
  assert.deepEqual(await cache.lookup(key2), { created: '2026-01-01T00:00:00Z' });
  await writeFile(join(cache.dir, 'keys', `${key2}.json`), '{"created": "ENV');
  assert.equal(await cache.lookup(key2), undefined);
  assert.deepEqual(await cache.index.keys(), []);
});

test('ContentStore: prune by size budget removes least recently used first, keeps pinned', async (t) => {
  const cache = new LocalCache(await tempDir(t));
  const blobs = [];
  for (let i = 0; i < 4; i++) blobs.push(await cache.store.put(Buffer.alloc(1000, i)));
  // ages: blob0 oldest … blob3 newest; then blob0 gets used, so blob1 is the oldest
  for (let i = 0; i < 4; i++) await utimes(cache.store.path(blobs[i].digest), new Date(1e12 + i * 1000), new Date(1e12 + i * 1000));
  await cache.store.touch(blobs[0].digest);
  const key = cacheKey({ n: 2 });
  await cache.record(key, { layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: blobs[2].digest, size: 1000, diffID: blobs[2].digest } });
  const r = await cache.prune({ maxBytes: 2000, keep: [blobs[1].digest] });
  assert.deepEqual(r.removed, [blobs[2].digest, blobs[3].digest]);
  assert.equal(r.keptBytes, 2000);
  assert.equal(r.droppedKeys, 1);
  assert.equal(await cache.index.get(key), undefined);
  const left = (await cache.store.list()).map((b) => b.digest).sort();
  assert.deepEqual(left, [blobs[0].digest, blobs[1].digest].sort());
  const r2 = await cache.store.prune({ keep: [blobs[0].digest] });
  assert.deepEqual(r2.removed, [blobs[1].digest]);
});

const writerScript = `
import { ContentStore, CacheIndex, cacheKey } from ${JSON.stringify(new URL('../../src/cache/index.ts', import.meta.url).href)};
const [dir, who] = process.argv.slice(1);
const store = new ContentStore(dir);
const index = new CacheIndex(dir);
for (let i = 0; i < 40; i++) {
  const shared = Buffer.alloc(200000 + i, i);
  const own = Buffer.from(who + ':' + i);
  await store.put(async function* () { for (let o = 0; o < shared.length; o += 8192) { yield shared.subarray(o, o + 8192); await new Promise((r) => setImmediate(r)); } }());
  await store.put(own);
  await index.set(cacheKey({ i }), { created: 'RUN step ' + i + ' '.repeat(5000) + who });
}
`;

test('ContentStore: two processes writing the same blobs and keys at once leave only whole files', async (t) => {
  const dir = await tempDir(t);
  const run = (who: string) => new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', writerScript, dir, who], { stdio: ['ignore', 'inherit', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${who} exited ${code}`))));
  });
  const reader = (async () => {
    // read while they write: any blob visible must be complete
    const store = new ContentStore(dir);
    for (let n = 0; n < 50; n++) {
      for (const b of await store.list()) assert.ok(await store.verify(b.digest), `partial blob seen: ${b.digest}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  await Promise.all([run('A'), run('B'), reader]);
  const cache = new LocalCache(dir);
  const list = await cache.store.list();
  assert.equal(list.length, 40 + 80);
  for (const b of list) assert.ok(await cache.store.verify(b.digest));
  const keys = await cache.index.keys();
  assert.equal(keys.length, 40);
  for (const k of keys) assert.match((await cache.index.get(k))!.created!, /^RUN step \d+ +[AB]$/);
  assert.deepEqual(await readdir(join(dir, 'tmp')), []);
});
