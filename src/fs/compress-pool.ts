// Where a layer's pieces are compressed off the main thread. gzip runs on libuv's thread pool
// through zlib's async API: no JavaScript heap per thread (a worker thread is one, ~15 MB, which
// also holds the buffers it freed until its own collector runs), and deflating a piece whole with
// Z_FINISH gives exactly gzipSync's bytes. zstd's async API frames its output otherwise than
// zstdCompressSync does, so zstd runs in worker threads — and so does gzip when more pieces at
// once are asked for than libuv has threads to spare (one is kept for file reads).
import { Worker } from 'node:worker_threads';
import * as zlib from 'node:zlib';

export interface PieceCompressor {
  /** Compresses `data` into one gzip member or zstd frame; `data` must not change until it resolves. */
  run(data: Uint8Array): Promise<Buffer>;
  close(): Promise<void>;
}

/**
 * gzip's options for a piece of `n` bytes: room for all of its output (deflate grows incompressible
 * data by a few bytes per 16 KiB), so it comes out in one piece, not joined from many. The bytes do
 * not depend on it; zstd's do (it compresses otherwise into room for its worst case), so zstd keeps
 * zlib's default.
 */
export function gzipOptions(level: number, n: number): zlib.ZlibOptions {
  return { level, chunkSize: outputRoom(n) };
}

// Plain JavaScript on purpose: the worker source below embeds it as text.
const outputRoom = (n: number): number => n + (n >> 10) + 1024;

/** libuv's thread pool size, as libuv reads it when the pool starts. */
function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1024) : 4;
}

/** A compressor for `parallel` pieces at once. */
export function pieceCompressor(c: 'gzip' | 'zstd', level: number, parallel: number): PieceCompressor {
  return c === 'gzip' && parallel < threadPoolSize() ? new ThreadPoolGzip(level, parallel) : new WorkerPool(c, level, parallel);
}

/**
 * At most `parallel` deflates at once: libuv's threads also read the layer's files (fs promises),
 * and a queue of deflates ahead of those reads would starve the tar stream that feeds them.
 */
class ThreadPoolGzip implements PieceCompressor {
  private readonly level: number;
  private readonly parallel: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(level: number, parallel: number) {
    this.level = level;
    this.parallel = parallel;
  }

  async run(data: Uint8Array): Promise<Buffer> {
    while (this.running >= this.parallel) await new Promise<void>((res) => this.waiting.push(res));
    this.running++;
    try {
      return await this.deflate(data);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private deflate(data: Uint8Array): Promise<Buffer> {
    const options = { ...gzipOptions(this.level, data.byteLength), flush: zlib.constants.Z_FINISH };
    return new Promise((resolve, reject) => {
      zlib.gzip(data, options, (err, out) => {
        if (err) return reject(new Error(`compression failed: ${err.message}`));
        out[9] = 0xff; // OS = unknown, as compressChunk
        // The output came in room for the whole input: a small one is copied out, so the chunk's
        // worth of room is not held while the output waits to be written.
        resolve(out.byteLength < out.buffer.byteLength / 4 ? Buffer.from(out) : out);
      });
    });
  }

  async close(): Promise<void> { /* nothing to stop */ }
}

// The piece comes in as a transferred buffer and its output goes back moved, not copied: a worker
// keeps no buffer of its own waiting for its collector. Inline source, so the bundled CLI needs no
// extra file.
const workerSource = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const outputRoom = ${outputRoom.toString()};
parentPort.on('message', ({ id, c, level, input }) => {
  try {
    const piece = new Uint8Array(input);
    let out;
    if (c === 'gzip') { out = zlib.gzipSync(piece, { level, chunkSize: outputRoom(piece.length) }); out[9] = 0xff; }
    else out = zlib.zstdCompressSync(piece, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
    // Small outputs may share Buffer's pool: those are copied. Larger ones own their buffer.
    const ab = out.byteLength > 65536 && out.byteOffset === 0 ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    parentPort.postMessage({ id, out: ab, outLength: out.byteLength }, [ab]);
  } catch (e) { parentPort.postMessage({ id, error: String(e && e.message || e) }); }
});`;

class WorkerPool implements PieceCompressor {
  private readonly c: 'gzip' | 'zstd';
  private readonly level: number;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private queue: Array<() => void> = [];
  private pending = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  constructor(c: 'gzip' | 'zstd', level: number, size: number) {
    this.c = c;
    this.level = level;
    for (let i = 0; i < size; i++) {
      const w = new Worker(workerSource, { eval: true });
      w.on('message', (m: { id: number; out?: ArrayBuffer; outLength?: number; error?: string }) => {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        this.idle.push(w);
        this.queue.shift()?.();
        if (m.error !== undefined) p.reject(new Error(`compression failed: ${m.error}`));
        else p.resolve(Buffer.from(m.out!, 0, m.outLength));
      });
      w.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** A copy of `data` moves to the worker (the caller's buffer stays its own). */
  async run(data: Uint8Array): Promise<Buffer> {
    while (this.idle.length === 0) await new Promise<void>((res) => this.queue.push(res));
    const w = this.idle.pop()!;
    const id = this.nextId++;
    const input = data.slice().buffer;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, c: this.c, level: this.level, input }, [input]);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
