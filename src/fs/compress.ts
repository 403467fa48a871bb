// Layer compression. The tar stream is cut into chunks where its content says (ChunkCutter), each
// chunk compressed as independent gzip members / a zstd frame, and the results concatenated in
// order: the bytes depend only on the input, level and chunk size — never on core count, timing or
// what the cache holds — so every machine gets one digest. Because a chunk's bytes depend on its
// content alone, a chunk an earlier layer already compressed is copied from that layer's blob
// instead of compressed again (`reuse`): a one-file edit of a big COPY recompresses one chunk.
import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { gzipOptions, pieceCompressor, type PieceCompressor } from './compress-pool.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface CompressionOptions {
  compression: Compression;
  /** gzip 1-9 (default 6, BuildKit's default), zstd 1-22 (default 3). */
  level?: number;
  /** Average bytes of tar per independently compressed chunk (default 4 MiB). Part of the output's identity. */
  chunkSize?: number;
  /** Chunks compressed at once (default: available cores), on libuv's threads or workers (compress-pool.ts). Does not affect the output bytes. */
  workers?: number;
  /** Compressed chunks of earlier layers, to copy instead of compressing again. Does not affect the output bytes. */
  reuse?: ChunkReuse;
}

/** Where chunk pointers live (`<pointersDir>/<chunk id>`) and the blobs they point into (`<blobsDir>/sha256/<hex>`). */
export interface ChunkReuse {
  pointersDir: string;
  blobsDir: string;
  /** Called in output order for each chunk of a stream of several, before its bytes are yielded. */
  onChunk: (chunk: CompressedChunk) => void;
}

export interface CompressedChunk {
  /** Names the chunk's uncompressed bytes and the compressor: equal ids, equal compressed bytes. */
  id: string;
  /** Compressed bytes, and their sha256 (hex). */
  length: number;
  sha256: string;
  /** Copied from an earlier blob rather than compressed. */
  reused: boolean;
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

/** Bumped when the bytes a chunk compresses to change: a chunk id names them. */
const CHUNK_FORMAT = 'v1';

export function defaultLevel(c: Compression): number {
  return c === 'zstd' ? 3 : 6;
}

/**
 * The gzip members of a chunk: it is cut into 256 KiB blocks; a block whose samples look like
 * random bytes (compressed or encrypted files: a byte histogram as flat as noise, the test btrfs's
 * compression heuristic makes) is stored, not deflated — deflate-6 spends ~10× longer on such bytes
 * to save nothing. Runs of blocks of one kind become one member each. Which blocks are stored
 * depends only on their bytes, so the output stays a function of the input, level and chunk size.
 */
function gzipMembers(chunk: Uint8Array): Array<{ from: number; to: number; stored: boolean }> {
  const BLOCK = 262144;
  const members: Array<{ from: number; to: number; stored: boolean }> = [];
  let runStart = 0;
  let runStored = chunk.length > 0 && looksRandom(chunk, 0, Math.min(BLOCK, chunk.length));
  for (let at = BLOCK; at < chunk.length; at += BLOCK) {
    const stored = looksRandom(chunk, at, Math.min(at + BLOCK, chunk.length));
    if (stored === runStored) continue;
    members.push({ from: runStart, to: at, stored: runStored });
    runStart = at;
    runStored = stored;
  }
  members.push({ from: runStart, to: chunk.length, stored: runStored });
  return members;
}

const SAMPLE = 4096;
const SAMPLES = 4;
// Sum of squared byte counts of a sample: 4096 uniform random bytes give ~69,600 (n + n(n-1)/256);
// text and machine code give several times that. 10 % above noise costs deflate under 1 %.
const NOISE = SAMPLE + (SAMPLE * (SAMPLE - 1)) / 256;
const counts = new Uint32Array(256);

function looksRandom(chunk: Uint8Array, start: number, end: number): boolean {
  if (end - start < SAMPLE * SAMPLES) return false;
  const stride = Math.floor((end - start) / SAMPLES);
  for (let s = 0; s < SAMPLES; s++) {
    counts.fill(0);
    const from = start + s * stride;
    for (let i = from; i < from + SAMPLE; i++) counts[chunk[i]]++;
    let squares = 0;
    for (let b = 0; b < 256; b++) squares += counts[b] * counts[b];
    if (squares > NOISE * 1.1) return false;
  }
  return true;
}

/**
 * A stored gzip member, written here, not by zlib: blocks of the most deflate allows (65,535
 * bytes), so its bytes depend on no zlib version (RFC 1951 3.2.4, RFC 1952 2.3).
 */
function storedMember(data: Uint8Array): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / 65535));
  const out = Buffer.allocUnsafe(10 + data.length + 5 * blocks + 8);
  out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  let o = 10;
  for (let b = 0; b < blocks; b++) {
    const piece = data.subarray(b * 65535, (b + 1) * 65535);
    out[o] = b === blocks - 1 ? 1 : 0;
    out.writeUInt16LE(piece.length, o + 1);
    out.writeUInt16LE(piece.length ^ 0xffff, o + 3);
    out.set(piece, o + 5);
    o += 5 + piece.length;
  }
  out.writeUInt32LE(zlib.crc32(data), o);
  out.writeUInt32LE(data.length >>> 0, o + 4);
  return out;
}

const zstdParams = (level: number) => ({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });

/** Compresses one chunk on this thread, exactly as compressStream does elsewhere (the reference for determinism). */
export function compressChunk(c: Compression, level: number, chunk: Uint8Array): Buffer {
  const parts = chunkParts(c, level, chunk);
  return parts.length === 1 ? parts[0] : Buffer.concat(parts);
}

/** compressChunk's bytes in pieces (its gzip members), which follow one another in the blob. */
function chunkParts(c: Compression, level: number, chunk: Uint8Array): Buffer[] {
  if (c === 'zstd') return [zlib.zstdCompressSync(chunk, zstdParams(level))];
  if (c !== 'gzip') return [Buffer.from(chunk)];
  return gzipMembers(chunk).map(({ from, to, stored }) => {
    if (stored) return storedMember(chunk.subarray(from, to));
    const out = zlib.gzipSync(chunk.subarray(from, to), gzipOptions(level, to - from));
    out[9] = 0xff; // OS = unknown: zlib's build-time OS code differs between platforms
    return out;
  });
}

type Members = ReturnType<typeof gzipMembers>;

/**
 * Whether a chunk is worth looking up among earlier blobs' chunks (and pointing at): that costs two
 * hashes of all of it, and deflate-6 runs at a tenth to a fiftieth of SHA-256's speed, so it pays
 * once a quarter of the chunk is deflated rather than stored (random bytes: compressed or
 * encrypted files). zstd compresses every chunk.
 */
export function worthLookingUp(c: Compression, chunk: Uint8Array, members: Members | undefined = c === 'gzip' ? gzipMembers(chunk) : undefined): boolean {
  if (!members) return true;
  let deflated = 0;
  for (const m of members) if (!m.stored) deflated += m.to - m.from;
  return deflated * 4 >= chunk.length;
}

/** chunkParts' bytes, with the deflating done by `pieces` off this thread (asked for only when there is some). */
async function compressChunkOff(c: Compression, chunk: Uint8Array, pieces: () => PieceCompressor, members: Members | undefined): Promise<Buffer[]> {
  if (c === 'zstd') return [await pieces().run(chunk)];
  return Promise.all((members ?? gzipMembers(chunk)).map(({ from, to, stored }) => (stored ? storedMember(chunk.subarray(from, to)) : pieces().run(chunk.subarray(from, to)))));
}

const sha256Hex = (data: Uint8Array | Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const d of Array.isArray(data) ? data : [data]) h.update(d);
  return h.digest('hex');
};
const byteLength = (parts: Uint8Array[]): number => parts.reduce((n, p) => n + p.length, 0);

/**
 * A chunk pointer, one file per chunk id in the pointers dir: "<blob hex> <offset> <length>
 * <sha256 of those bytes>". Torn or stale, it is a miss when read (copyChunk), so plain writes do.
 */
export interface ChunkPointer { blob: string; offset: number; length: number; sha256: string }

export function parseChunkPointer(text: string): ChunkPointer | undefined {
  const [blob, offset, length, sha256] = text.split(' ');
  const p = { blob, offset: Number(offset), length: Number(length), sha256 };
  return /^[0-9a-f]{64}$/.test(blob ?? '') && Number.isSafeInteger(p.offset) && Number.isSafeInteger(p.length) && p.length > 0 ? p : undefined;
}

/**
 * Points every chunk of a new blob at it (the newest blob holding a chunk is the one a size-bounded
 * cache keeps longest).
 */
export async function writeChunkPointers(dir: string, blobHex: string, chunks: Array<CompressedChunk & { offset: number }>): Promise<void> {
  await mkdir(dir, { recursive: true });
  await Promise.all(chunks.map((c) => writeFile(join(dir, c.id), `${blobHex} ${c.offset} ${c.length} ${c.sha256}`)));
}

/**
 * The chunk's compressed bytes from an earlier blob: a missing pointer or blob, a short read or
 * another sha256 is a miss, never a wrong chunk.
 */
async function copyChunk(reuse: Omit<ChunkReuse, 'onChunk'>, id: string): Promise<{ out: Buffer; sha256: string } | undefined> {
  const pointer = parseChunkPointer(await readFile(join(reuse.pointersDir, id), 'latin1').catch(() => ''));
  if (!pointer) return undefined;
  try {
    const fh = await open(join(reuse.blobsDir, 'sha256', pointer.blob), 'r');
    try {
      const out = Buffer.allocUnsafe(pointer.length);
      if ((await fh.read(out, 0, pointer.length, pointer.offset)).bytesRead !== pointer.length) return undefined;
      return sha256Hex(out) === pointer.sha256 ? { out, sha256: pointer.sha256 } : undefined;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * Cuts a tar stream into chunks by content (content-defined chunking, as rsync and casync do), so
 * that an edit moves no chunk boundary beyond the chunk it lands in: candidate cuts are the tar
 * stream's 512-byte blocks at least half a chunk in; a block cuts when a hash of its first 32
 * bytes (for a header, the entry's name) hits 1 in chunkSize/1024, so chunks average `chunkSize`;
 * a chunk never passes twice that. Each chunk owns its memory until it is given back (`recycle`).
 */
export class ChunkCutter {
  private readonly min: number;
  private readonly max: number;
  private readonly every: number;
  private buf: Uint8Array;
  private have = 0;
  private scan: number;
  private readonly spare: ArrayBuffer[] = [];
  constructor(chunkSize: number) {
    this.min = Math.max(512, Math.floor(chunkSize / 1024) * 512);
    this.max = Math.max(1024, this.min * 4);
    this.every = Math.max(1, Math.floor(chunkSize / 1024));
    // Room grows as the stream does: most layers are far smaller than a chunk, and zeroing the
    // whole 8 MiB for each of them (external memory V8 counts toward its next collection) showed.
    this.buf = new Uint8Array(Math.min(this.max, 64 << 10));
    this.scan = this.min;
  }
  /** Memory of a chunk no longer used, for a later chunk. */
  recycle(memory: ArrayBufferLike): void {
    if (memory.byteLength === this.max && memory instanceof ArrayBuffer && this.spare.length < 2) this.spare.push(memory);
  }
  /** The chunks complete once `data` is added (`data` is copied: its producer may reuse it). */
  *push(data: Uint8Array): Generator<Uint8Array> {
    let d = data;
    while (d.length > 0) {
      const take = Math.min(this.max - this.have, d.length);
      if (this.have + take > this.buf.length) this.grow(this.have + take);
      this.buf.set(d.subarray(0, take), this.have);
      this.have += take;
      d = d.subarray(take);
      for (;;) {
        const cut = this.findCut();
        if (cut === undefined) break;
        yield this.cutAt(cut);
      }
    }
  }
  /** The last chunk (possibly empty). */
  end(): Uint8Array {
    const last = this.buf.subarray(0, this.have);
    this.buf = new Uint8Array(0);
    return last;
  }
  private findCut(): number | undefined {
    const b = this.buf;
    for (; this.scan + 32 <= this.have && this.scan < this.max; this.scan += 512) {
      let h = 0x811c9dc5; // FNV-1a
      for (let i = this.scan; i < this.scan + 32; i++) h = Math.imul(h ^ b[i], 0x01000193);
      if ((h >>> 0) % this.every === 0) return this.scan;
    }
    return this.have >= this.max ? this.max : undefined;
  }
  private grow(need: number): void {
    const room = new Uint8Array(Math.min(this.max, Math.max(need, this.buf.length * 4)));
    room.set(this.buf.subarray(0, this.have));
    this.buf = room;
  }
  private cutAt(cut: number): Uint8Array {
    const chunk = this.buf.subarray(0, cut);
    const next = new Uint8Array(this.spare.pop() ?? new ArrayBuffer(this.max));
    next.set(this.buf.subarray(cut, this.have));
    this.buf = next;
    this.have -= cut;
    this.scan = this.min;
    return chunk;
  }
}

/** A chunk's compressed bytes, in the pieces they were made in (joining them would be one more copy). */
interface ChunkOutput { out: Buffer[]; id?: string; sha256?: string; reused: boolean }

/**
 * Compresses a stream of tar bytes into an ordered stream of compressed bytes. A stream of one
 * chunk is compressed inline (small layers start no thread, nor look for chunks to reuse). Each
 * input Buffer is copied before the next is asked for, so its producer may reuse it; with 'none'
 * the input is passed on as it is.
 */
export async function* compressStream(input: AsyncIterable<Buffer>, opts: CompressionOptions): AsyncGenerator<Buffer> {
  const c = opts.compression;
  if (c === 'none') { yield* input; return; }
  const level = opts.level ?? defaultLevel(c);
  if (c === 'gzip' && (level < 0 || level > 9)) throw new UserError(`gzip compression level ${level} is out of range`, { hint: 'use a level from 0 to 9' });
  if (c === 'zstd' && (level < 1 || level > 22)) throw new UserError(`zstd compression level ${level} is out of range`, { hint: 'use a level from 1 to 22' });
  const nworkers = Math.max(1, opts.workers ?? availableParallelism());
  const reuse = opts.reuse && { pointersDir: opts.reuse.pointersDir, blobsDir: opts.reuse.blobsDir };
  const cutter = new ChunkCutter(opts.chunkSize ?? DEFAULT_CHUNK_SIZE);
  let pieces: PieceCompressor | null = null;
  let chunks = 0;
  const inflight: Promise<ChunkOutput>[] = [];
  const off = async (chunk: Uint8Array): Promise<ChunkOutput> => {
    try {
      const members = c === 'gzip' ? gzipMembers(chunk) : undefined;
      const id = reuse && worthLookingUp(c, chunk, members) ? `${c}-${level}-${CHUNK_FORMAT}-${sha256Hex(chunk)}` : undefined;
      const copied = id !== undefined ? await copyChunk(reuse!, id) : undefined;
      if (copied) return { out: [copied.out], sha256: copied.sha256, id, reused: true };
      const out = await compressChunkOff(c, chunk, () => (pieces ??= pieceCompressor(c, level, nworkers)), members);
      return { out, id, sha256: id !== undefined ? sha256Hex(out) : undefined, reused: false };
    } finally {
      cutter.recycle(chunk.buffer);
    }
  };
  const submit = (chunk: Uint8Array, last = false): void => {
    // A layer of one chunk (most RUN and small COPY layers) is compressed inline, with no chunk to
    // look up: handing it off would cost more than the chunk. The bytes are the same either way.
    if (last && chunks === 0) inflight.push(Promise.resolve({ out: chunkParts(c, level, chunk), reused: false }));
    else {
      const p = off(chunk);
      p.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
      inflight.push(p);
    }
    chunks++;
  };
  const next = async (): Promise<Buffer[]> => {
    const r = await inflight.shift()!;
    if (r.id !== undefined && r.sha256 !== undefined) opts.reuse?.onChunk({ id: r.id, length: byteLength(r.out), sha256: r.sha256, reused: r.reused });
    return r.out;
  };
  try {
    for await (const data of input) {
      for (const chunk of cutter.push(data)) {
        submit(chunk);
        // At most one chunk waits beyond those being compressed: memory stays a few chunks.
        while (inflight.length > nworkers) yield* await next();
      }
    }
    const last = cutter.end();
    if (last.length > 0 || chunks === 0) submit(last, true);
    while (inflight.length > 0) yield* await next();
  } finally {
    await Promise.allSettled(inflight);
    await (pieces as PieceCompressor | null)?.close();
  }
}

/** Detects gzip / zstd / plain tar by magic number. */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** Decompresses a blob stream whatever its compression (detected from the first bytes). */
export async function* decompressStream(input: AsyncIterable<Buffer | Uint8Array>): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < 4) {
    const r = await it.next();
    if (r.done) { ended = true; break; }
    head = Buffer.concat([head, r.value]);
  }
  const kind = detectCompression(head);
  const rest = (async function* () {
    if (head.length) yield head;
    if (!ended) for (;;) { const r = await it.next(); if (r.done) break; yield Buffer.from(r.value); }
  })();
  if (kind === 'none') { yield* rest; return; }
  // 256 KiB pieces out, not zlib's 16 KiB: each piece costs its way through the stream and the
  // tar reader, and a 2 MB layer took 23-34 ms to inflate in 16 KiB pieces, 8-13 ms in 256 KiB.
  const z = kind === 'gzip' ? zlib.createGunzip({ chunkSize: 1 << 18 }) : zlib.createZstdDecompress({ chunkSize: 1 << 18 });
  const src = Readable.from(rest);
  src.on('error', (e) => z.destroy(e));
  src.pipe(z);
  try {
    for await (const chunk of z) yield chunk as Buffer;
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`corrupt ${kind} data: ${(e as Error).message}`, { hint: 'the layer or archive is damaged; fetch it again' });
  } finally {
    src.destroy();
    z.destroy();
  }
}
