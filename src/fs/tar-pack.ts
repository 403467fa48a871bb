// Packs the small pieces of a layer's tar stream (headers, small files, padding) into 1 MiB blocks,
// written in place: a layer of 200,000 tiny files comes out as a few hundred Buffers instead of
// 600,000, each of which would hold memory of its own until the garbage collector got to it.
// Large pieces pass through as they are, after the block before them. A consumer that is done
// with each piece before it asks for the next (the compressor copies) lets one block serve it all.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { encodeHeader, writePlainHeader, type TarHeader } from './tar.ts';

export const PACK_BLOCK = 1 << 20;
/** Pieces larger than this are passed on, not copied (a large file's chunks). */
const COPY_AT_MOST = 64 << 10;

const probe = Buffer.alloc(1);

export class TarPacker {
  private block: Buffer | undefined;
  private used = 0;
  private readonly reuse: boolean;

  /**
   * `reuse`: the consumer is done with a block once it asks for the next piece (it copies or hashes
   * it), so one block serves the whole stream; else every block is new, for consumers that keep them.
   */
  constructor(opts: { reuse?: boolean } = {}) {
    this.reuse = opts.reuse ?? false;
  }

  /** The filled part of the current block, if any; what follows goes into the block again (reuse) or a new one. */
  *flush(): Generator<Buffer> {
    if (!this.block || this.used === 0) return;
    const filled = this.block.subarray(0, this.used);
    if (!this.reuse) this.block = undefined;
    this.used = 0;
    yield filled;
  }

  /** Makes room for `n` more bytes (n ≤ PACK_BLOCK): flushes the current block when they do not fit in it. */
  *room(n: number): Generator<Buffer> {
    if (this.used + n > PACK_BLOCK) yield* this.flush();
  }

  /** `n` bytes at the end of the block, for the caller to fill; call room(n) first. */
  private reserve(n: number): { block: Buffer; offset: number } {
    this.block ??= Buffer.allocUnsafeSlow(PACK_BLOCK);
    const offset = this.used;
    this.used += n;
    return { block: this.block, offset };
  }

  /** Adds `bytes`: copied into the block when small, else passed on whole after the block. */
  *add(bytes: Buffer): Generator<Buffer> {
    if (bytes.length > COPY_AT_MOST) {
      yield* this.flush();
      yield bytes;
      return;
    }
    yield* this.room(bytes.length);
    const { block, offset } = this.reserve(bytes.length);
    bytes.copy(block, offset);
  }

  /** `n` zero bytes (padding). */
  *zeros(n: number): Generator<Buffer> {
    yield* this.room(n);
    const { block, offset } = this.reserve(n);
    block.fill(0, offset, offset + n);
  }

  /** An entry's header: written in place when it is one plain ustar block, else encoded (PAX) and added. */
  *header(h: TarHeader): Generator<Buffer> {
    yield* this.room(512);
    this.block ??= Buffer.allocUnsafeSlow(PACK_BLOCK);
    if (writePlainHeader(h, this.block, this.used)) this.used += 512;
    else yield* this.add(encodeHeader(h));
  }

  /**
   * Reads the file at `path`, expected to hold `size` bytes (≤ PACK_BLOCK), straight into the
   * block; call room(size) first. Returns the size the file turned out to have: `size` unless it
   * changed since it was listed.
   */
  readFile(path: string, size: number): number {
    const { block, offset } = this.reserve(size);
    const fd = openSync(path, 'r');
    try {
      let got = 0;
      while (got < size) {
        const n = readSync(fd, block, offset + got, size - got, null);
        if (n === 0) return got;
        got += n;
      }
      return readSync(fd, probe, 0, 1, null) === 0 ? size : fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  }
}
