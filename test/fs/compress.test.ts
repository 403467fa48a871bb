// Chunk compression: blocks of random-looking bytes are stored, everything else deflated at the
// level asked (GNU gzip reads either back byte for byte); chunks are cut by content, and a chunk an
// earlier blob holds is copied from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { gunzipSync } from 'node:zlib';
import { ChunkCutter, compressChunk, compressStream, worthLookingUp, type CompressionOptions } from '../../src/fs/compress.ts';
import { writeLayer, type LayerEntry } from '../../src/fs/index.ts';

const noise = (n: number, seed = 1): Buffer => createCipheriv('aes-128-ctr', Buffer.alloc(16, seed), Buffer.alloc(16)).update(Buffer.alloc(n));
const text = (n: number, seed = 0): Buffer => Buffer.from(Array.from({ length: Math.ceil(n / 30) }, (_, i) => `line ${i + seed * 7919} of a source;\n`).join('')).subarray(0, n);
const gunzipWithGnu = (gz: Buffer): Buffer => execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 64 << 20 });
/** The gzip members of a stream, by their magic and deflate method (1f 8b 08), as offsets. */
const members = (gz: Buffer): number => zlib.gunzipSync(gz) && gz.toString('latin1').split('\x1f\x8b\x08').length - 1;

test('compress: a chunk without random-looking blocks is one gzip member, the bytes of plain zlib at the level', () => {
  const chunk = text(1 << 20);
  const out = compressChunk('gzip', 6, chunk);
  const plain = zlib.gzipSync(chunk, { level: 6 });
  plain[9] = 0xff;
  assert.deepEqual(out, plain);
  assert.ok(out.length < chunk.length / 4, 'text is deflated');
});

test('compress: random blocks are stored as members of their own, text between them deflated', () => {
  const chunk = Buffer.concat([text(512 << 10), noise(1 << 20), text(512 << 10)]);
  const out = compressChunk('gzip', 6, chunk);
  assert.deepEqual(gunzipWithGnu(out), chunk);
  assert.equal(members(out), 3, 'text, stored noise, text');
  const noiseOnly = compressChunk('gzip', 6, noise(1 << 20, 2));
  assert.equal(members(noiseOnly), 1);
  // Stored: the bytes plus 5 bytes per 64 KiB block and the gzip frame, never more.
  assert.ok(noiseOnly.length <= (1 << 20) + 16 * 5 + 18 + 5, `stored size ${noiseOnly.length}`);
  assert.ok(out.length < (1 << 20) + 2 * (512 << 10) / 4, 'the text parts still compress');
});

test('compress: a block mixing text and noise is deflated (only all-noise samples store a block)', () => {
  const block = Buffer.concat([noise(128 << 10), text(128 << 10)]);
  const out = compressChunk('gzip', 6, block);
  assert.equal(members(out), 1);
  const plain = zlib.gzipSync(block, { level: 6 });
  plain[9] = 0xff;
  assert.deepEqual(out, plain);
});

async function compressAll(input: Buffer, opts: Omit<CompressionOptions, 'compression'>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of compressStream((async function* () { for (let i = 0; i < input.length; i += 100_000) yield input.subarray(i, i + 100_000); })(), { compression: 'gzip', ...opts })) out.push(b);
  return Buffer.concat(out);
}

test('compress: off this thread, the same blocks are stored and the same bytes made as inline (one rule, one output)', async () => {
  const input = Buffer.concat([noise(300 << 10, 3), text(900 << 10), noise(1800 << 10, 4)]);
  const pooled = await compressAll(input, { chunkSize: 1 << 20, workers: 2 });
  assert.deepEqual(await compressAll(input, { chunkSize: 1 << 20, workers: 1 }), pooled);
  const cutter = new ChunkCutter(1 << 20);
  const inline = [...cutter.push(input), cutter.end()].filter((c) => c.length > 0).map((c) => compressChunk('gzip', 6, c));
  assert.deepEqual(Buffer.concat(inline), pooled, 'the thread pool deflates as compressChunk does on this thread');
  assert.deepEqual(gunzipWithGnu(pooled), input);
  assert.ok(members(pooled) > 3, 'stored and deflated members');
});

/** A tar-like stream: entries of 512-byte headers naming them, then their bytes padded to 512. */
function tarLike(sizes: number[], grow?: { index: number; by: number }): Buffer {
  const parts: Buffer[] = [];
  sizes.forEach((size, i) => {
    const header = Buffer.alloc(512);
    header.write(`dir/file-${String(i).padStart(5, '0')}.txt`);
    const body = i % 7 === 3 ? noise(size, i % 250) : text(size, i);
    const data = grow?.index === i ? Buffer.concat([body, Buffer.from('x'.repeat(grow.by))]) : body;
    parts.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  });
  return Buffer.concat(parts);
}

const chunkHashes = (stream: Buffer, chunkSize: number): string[] => {
  const cutter = new ChunkCutter(chunkSize);
  const out = [...cutter.push(stream), cutter.end()].filter((c) => c.length > 0);
  assert.deepEqual(Buffer.concat(out), stream, 'the chunks are the stream');
  return out.map((c) => createHash('sha256').update(c).digest('hex'));
};

test('compress: chunks are cut by content, so growing one file changes only the chunk it is in', () => {
  const sizes = Array.from({ length: 1200 }, (_, i) => 2000 + ((i * 7919) % 14000));
  const before = chunkHashes(tarLike(sizes), 256 << 10);
  assert.ok(before.length > 20, `${before.length} chunks`);
  for (const by of [19, 512, 3000]) {
    const after = chunkHashes(tarLike(sizes, { index: 600, by }), 256 << 10);
    const kept = after.filter((h) => before.includes(h)).length;
    assert.ok(kept >= before.length - 2, `+${by} bytes: ${kept} of ${before.length} chunks kept (${after.length} now)`);
  }
});

test('compress: chunks never exceed twice the chunk size, even where no block hashes to a cut', () => {
  const cutter = new ChunkCutter(64 << 10);
  const sizes = [...cutter.push(Buffer.alloc(1 << 20)), cutter.end()].map((c) => c.length);
  assert.ok(sizes.every((n) => n <= 128 << 10), sizes.join(' '));
  assert.equal(sizes.reduce((a, b) => a + b, 0), 1 << 20);
});

test('writer: a layer with one file grown copies its other chunks from the earlier blob; bytes as if compressed anew', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-chunks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const entries = (grow?: number): LayerEntry[] => Array.from({ length: 300 }, (_, i) => ({
    path: `src/f${String(i).padStart(4, '0')}.js`, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 1,
    content: { buffer: i % 5 === 0 ? noise(30_000, i) : Buffer.concat([text(20_000 + i * 13), Buffer.from(i === 150 && grow ? 'y'.repeat(grow) : '')]) },
  }));
  const opts = { compression: 'gzip' as const, chunkSize: 256 << 10, workers: 2 };
  const first = await writeLayer(entries(), { ...opts, dir: join(dir, 'blobs'), chunkIndexDir: join(dir, 'chunks') });
  const pointers = readdirSync(join(dir, 'chunks'));
  assert.ok(pointers.length > 10, `${pointers.length} chunk pointers`);
  assert.ok(pointers.every((p) => readFileSync(join(dir, 'chunks', p), 'latin1').startsWith(first.digest.slice(7) + ' ')));

  const fresh = await writeLayer(entries(40), { ...opts, dir: join(dir, 'fresh') });
  const tar = gunzipSync(readFileSync(fresh.path));
  const seen: boolean[] = [];
  const reusedOut = await compressAll(tar, { ...opts, reuse: { pointersDir: join(dir, 'chunks'), blobsDir: join(dir, 'blobs'), onChunk: (c) => seen.push(c.reused) } });
  assert.deepEqual(reusedOut, readFileSync(fresh.path), 'same bytes with and without reuse');
  const reused = seen.filter(Boolean).length;
  assert.ok(reused >= seen.length - 2 && reused > 0, `${reused} of ${seen.length} chunks copied`);

  // Through the writer, with a damaged earlier blob: a chunk whose bytes no longer match its
  // pointer is compressed again, and the layer is still right.
  const blob = readFileSync(first.path);
  blob.fill(0, 1000, 200_000);
  writeFileSync(first.path, blob);
  const second = await writeLayer(entries(40), { ...opts, dir: join(dir, 'blobs'), chunkIndexDir: join(dir, 'chunks') });
  assert.equal(second.digest, fresh.digest);
  assert.equal(second.diffID, fresh.diffID);
});

test('compress: a chunk is looked up among earlier chunks only where a quarter or more of it is deflated', () => {
  const mib = 1 << 20;
  assert.equal(worthLookingUp('gzip', text(mib)), true, 'text');
  assert.equal(worthLookingUp('gzip', noise(mib)), false, 'noise');
  assert.equal(worthLookingUp('gzip', Buffer.concat([noise(mib / 2), text(mib / 2)])), true, 'half text');
  const mostlyNoise = Buffer.concat([noise((mib * 7) / 8), text(mib / 8)]);
  assert.equal(worthLookingUp('gzip', mostlyNoise), false, 'an eighth text');
  assert.ok(compressChunk('gzip', 6, mostlyNoise).length < mostlyNoise.length - mib / 16, 'its text is deflated all the same');
  assert.equal(worthLookingUp('zstd', noise(mib)), true, 'zstd compresses every chunk');
});

test('compress: a chunk gzip mostly stores is neither looked up nor pointed at; the others are, and the bytes do not change', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-stored-chunks-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // 6 MiB of noise then 2 MiB of text, in chunks of about 1 MiB: the noise chunks are stored whole.
  const input = Buffer.concat([noise(6 << 20, 9), text(2 << 20)]);
  const reported: number[] = [];
  const reuse = { pointersDir: join(dir, 'chunks'), blobsDir: join(dir, 'blobs'), onChunk: (c: { length: number }) => reported.push(c.length) };
  const withReuse = await compressAll(input, { chunkSize: 1 << 20, workers: 2, reuse });
  assert.deepEqual(withReuse, await compressAll(input, { chunkSize: 1 << 20, workers: 2 }), 'the same bytes with and without reuse');
  assert.deepEqual(gunzipWithGnu(withReuse), input);
  const cutter = new ChunkCutter(1 << 20);
  const chunks = [...cutter.push(input), cutter.end()].filter((c) => c.length > 0);
  const deflated = chunks.filter((c) => compressChunk('gzip', 6, c).length < c.length);
  assert.ok(chunks.length - deflated.length >= 4, `${chunks.length - deflated.length} of ${chunks.length} chunks are stored`);
  const worth = chunks.filter((c) => worthLookingUp('gzip', c));
  assert.ok(worth.length >= 1 && worth.length <= deflated.length, `${worth.length} of ${deflated.length} deflated chunks are worth a lookup`);
  assert.equal(reported.length, worth.length, 'only the chunks worth a lookup are reported for pointers');
});
