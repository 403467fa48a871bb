// Layer compression. Output is split into fixed-size chunks of the tar stream, each compressed as
// an independent gzip member / zstd frame, and concatenated in order: the bytes depend only on the
// input, level and chunk size — never on core count or timing — so every machine gets one digest.
import { availableParallelism } from 'node:os';
import * as zlib from 'node:zlib';
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { chunkCompressor, gzipOptions, type ChunkCompressor } from './compress-pool.ts';

export type Compression = 'gzip' | 'zstd' | 'none';

export interface CompressionOptions {
  compression: Compression;
  /** gzip 1-9 (default 6, BuildKit's default), zstd 1-22 (default 3). */
  level?: number;
  /** Bytes of tar per independently compressed chunk (default 4 MiB). Part of the output's identity. */
  chunkSize?: number;
  /** Chunks compressed at once (default: available cores), on libuv's threads or workers (compress-pool.ts). Does not affect the output bytes. */
  workers?: number;
}

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

export function defaultLevel(c: Compression): number {
  return c === 'zstd' ? 3 : 6;
}

/** Compresses one chunk, exactly as the thread pool and the workers do (the reference for determinism). */
export function compressChunk(c: Compression, level: number, chunk: Uint8Array): Buffer {
  if (c === 'gzip') {
    const out = zlib.gzipSync(chunk, gzipOptions(level, chunk.byteLength));
    out[9] = 0xff; // OS = unknown: zlib's build-time OS code differs between platforms
    return out;
  }
  if (c === 'zstd') return zlib.zstdCompressSync(chunk, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } });
  return Buffer.from(chunk);
}

/**
 * Compresses a stream of tar bytes into an ordered stream of compressed bytes. Chunks are cut at
 * fixed offsets; a stream of one chunk is compressed inline (small layers start no thread).
 * Each input Buffer is copied before the next is asked for, so its producer may reuse it; with
 * 'none' the input is passed on as it is.
 */
export async function* compressStream(input: AsyncIterable<Buffer>, opts: CompressionOptions): AsyncGenerator<Buffer> {
  const c = opts.compression;
  if (c === 'none') { yield* input; return; }
  const level = opts.level ?? defaultLevel(c);
  if (c === 'gzip' && (level < 0 || level > 9)) throw new UserError(`gzip compression level ${level} is out of range`, { hint: 'use a level from 1 to 9' });
  if (c === 'zstd' && (level < 1 || level > 22)) throw new UserError(`zstd compression level ${level} is out of range`, { hint: 'use a level from 1 to 22' });
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const nworkers = Math.max(1, opts.workers ?? availableParallelism());
  let pool: ChunkCompressor | null = null;
  const inflight: Promise<Buffer>[] = [];
  // The tar bytes are copied into a chunk buffer as they come; a buffer the compressor is done
  // with is filled again, so a layer of any size uses a few chunk buffers, not one per chunk.
  const newChunk = (): Buffer => {
    const spare = pool?.spare.pop();
    return spare ? Buffer.from(spare) : Buffer.allocUnsafeSlow(chunkSize);
  };
  let chunk = newChunk();
  let have = 0;
  const submit = (last = false): void => {
    // A layer of one chunk (most RUN and small COPY layers) is compressed inline: handing it off
    // would cost more than the chunk. The bytes are the same either way.
    if (nworkers === 1 || (last && pool === null)) {
      inflight.push(Promise.resolve(compressChunk(c, level, chunk.subarray(0, have))));
      return;
    }
    pool ??= chunkCompressor(c, level, nworkers);
    const p = pool.run(chunk.buffer as ArrayBuffer, have);
    p.catch(() => undefined); // awaited in order below; avoid an unhandled rejection meanwhile
    inflight.push(p);
    chunk = newChunk();
  };
  try {
    for await (const data of input) {
      for (let off = 0; off < data.length;) {
        const take = Math.min(chunkSize - have, data.length - off);
        data.copy(chunk, have, off, off + take);
        have += take;
        off += take;
        if (have === chunkSize) {
          submit();
          have = 0;
          while (inflight.length > nworkers) yield await inflight.shift()!;
        }
      }
    }
    if (have > 0 || inflight.length === 0) submit(true);
    while (inflight.length > 0) yield await inflight.shift()!;
  } finally {
    await (pool as ChunkCompressor | null)?.close();
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
