// Layer compression. Output is split into fixed-size chunks of the tar stream, each compressed as
// an independent gzip member / zstd frame, and concatenated in order: the bytes depend only on the
// input, level and chunk size — never on core count or timing — so every machine gets one digest.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface CompressionOptions {
  compression: Compression;
  /** gzip 1-9 (default 6, BuildKit's default), zstd 1-22 (default 3). */
  level?: number;
  /** Bytes of tar per independently compressed chunk (default 4 MiB). Part of the output's identity. */
  chunkSize?: number;
  /** Worker threads (default: available cores). Does not affect the output bytes. */
  workers?: number;
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export function defaultLevel(c: Compression): number {
  return c === 'zstd' ? 3 : 6;
}

/** Compresses one chunk, exactly as a worker does (the reference for determinism). */
export function compressChunk(c: Compression, level: number, chunk: Uint8Array): Buffer {
  if (c === 'gzip') {
    const out = zlib.gzipSync(chunk, { level });
    out[9] = 0xff; // OS = unknown: zlib's build-time OS code differs between platforms
    return out;
  }
  if (c === 'zstd') return zlib.zstdCompressSync(chunk, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
  return Buffer.from(chunk);
}

const workerSource = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', ({ id, c, level, chunk }) => {
  try {
    let out;
    if (c === 'gzip') { out = zlib.gzipSync(chunk, { level }); out[9] = 0xff; }
    else out = zlib.zstdCompressSync(chunk, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
    const ab = out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    parentPort.postMessage({ id, out: ab }, [ab]);
  } catch (e) { parentPort.postMessage({ id, error: String(e && e.message || e) }); }
});`;

/** A small pool of compression workers; inline source so the bundled CLI needs no extra file. */
class CompressPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: Array<() => void> = [];
  private pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  constructor(size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(workerSource, { eval: true });
      w.on('message', (m: { id: number; out?: ArrayBuffer; error?: string }) => {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        this.idle.push(w);
        this.queue.shift()?.();
        if (m.error !== undefined) p.reject(new Error(`compression failed: ${m.error}`));
        else p.resolve(Buffer.from(m.out!));
      });
      w.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      this.workers.push(w);
      this.idle.push(w);
    }
  }
  async run(c: Compression, level: number, chunk: Buffer): Promise<Buffer> {
    while (this.idle.length === 0) await new Promise<void>((res) => this.queue.push(res));
    const w = this.idle.pop()!;
    const id = this.nextId++;
    // Copy into a transferable buffer: the chunk may be a view into a pooled allocation.
    const ab = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength) as ArrayBuffer;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, c, level, chunk: new Uint8Array(ab) }, [ab]);
    });
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/**
 * Compresses a stream of tar bytes into an ordered stream of compressed bytes. Chunks are cut at
 * fixed offsets; a stream of one chunk is compressed inline (small layers never start a worker).
 */
export async function* compressStream(input: AsyncIterable<Buffer>, opts: CompressionOptions): AsyncGenerator<Buffer> {
  const c = opts.compression;
  if (c === 'none') { yield* input; return; }
  const level = opts.level ?? defaultLevel(c);
  if (c === 'gzip' && (level < 0 || level > 9)) throw new UserError(`gzip compression level ${level} is out of range`, { hint: 'use a level from 1 to 9' });
  if (c === 'zstd' && (level < 1 || level > 22)) throw new UserError(`zstd compression level ${level} is out of range`, { hint: 'use a level from 1 to 22' });
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const nworkers = Math.max(1, opts.workers ?? availableParallelism());
  let pool: CompressPool | null = null;
  const inflight: Promise<Buffer>[] = [];
  const parts: Buffer[] = [];
  let have = 0;
  const submit = (chunk: Buffer, last = false): void => {
    // A layer of one chunk (most RUN and small COPY layers) is compressed inline: starting the
    // workers would cost more than the chunk. The bytes are the same either way.
    if (nworkers === 1 || (last && pool === null)) { inflight.push(Promise.resolve(compressChunk(c, level, chunk))); return; }
    pool ??= new CompressPool(nworkers);
    const p = pool.run(c, level, chunk);
    p.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
    inflight.push(p);
  };
  try {
    for await (const data of input) {
      let d = data;
      while (d.length > 0) {
        const take = Math.min(chunkSize - have, d.length);
        parts.push(d.subarray(0, take));
        have += take;
        d = d.subarray(take);
        if (have === chunkSize) {
          submit(Buffer.concat(parts, have));
          parts.length = 0;
          have = 0;
          while (inflight.length > nworkers * 2) yield await inflight.shift()!;
        }
      }
    }
    if (have > 0 || inflight.length === 0) submit(Buffer.concat(parts, have), true);
    while (inflight.length > 0) yield await inflight.shift()!;
  } finally {
    await (pool as CompressPool | null)?.close();
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
  const z = kind === 'gzip' ? zlib.createGunzip() : zlib.createZstdDecompress();
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
