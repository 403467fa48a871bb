// A layer blob while it is being written, readable as it grows: an upload can follow the writer
// instead of starting once the layer is done (its digest is known only at the end).
import { close, openSync, read } from 'node:fs';
import { promisify } from 'node:util';

/** What a blob became once written (writer.ts's LayerResult holds this and more). */
export interface WrittenBlob { path: string; digest: string; size: number; mediaType: string }

export interface GrowingBlob {
  /** True once `bytes` are written; false when the blob ends shorter, or writing it fails. */
  reached(bytes: number): Promise<boolean>;
  /** The blob's bytes from its start: as they are written, then to its end. Fails where writing fails. */
  read(): AsyncIterable<Buffer>;
  /** The blob once written (rejects where writing fails). */
  done: Promise<WrittenBlob>;
}

const READ_BYTES = 1 << 20;
const readAt = promisify(read);
const closeFd = promisify(close);

/** The writer's side: it says what is on disk (`wrote`), then how it ended. */
export class BlobInWriting implements GrowingBlob {
  readonly done: Promise<WrittenBlob>;
  private readonly tmp: string;
  private written = 0;
  private ended: { error?: unknown } | undefined;
  /** Set before the temporary file is renamed: from then on a reader opens the blob itself. */
  private renaming = false;
  private waiters: Array<() => void> = [];
  private settle!: { resolve: (r: WrittenBlob) => void; reject: (e: unknown) => void };

  constructor(tmp: string) {
    this.tmp = tmp;
    this.done = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.done.catch(() => undefined); // a blob nobody follows may fail unobserved here: writeLayer throws it
  }

  /** `n` more bytes are on disk (their write completed). */
  wrote(n: number): void {
    this.written += n;
    this.wake();
  }

  renamed(): void {
    this.renaming = true;
  }

  finished(result: WrittenBlob): void {
    this.ended = {};
    this.settle.resolve(result);
    this.wake();
  }

  failed(error: unknown): void {
    this.ended = { error };
    this.settle.reject(error);
    this.wake();
  }

  async reached(bytes: number): Promise<boolean> {
    while (this.written < bytes && !this.ended) await this.change();
    return this.written >= bytes && this.ended?.error === undefined;
  }

  async *read(): AsyncGenerator<Buffer> {
    const fd = await this.openNow();
    try {
      for (let pos = 0; ;) {
        if (pos < this.written) {
          const buf = Buffer.allocUnsafe(Math.min(READ_BYTES, this.written - pos));
          const { bytesRead } = await readAt(fd, buf, 0, buf.length, pos);
          if (bytesRead === 0) throw new Error(`internal: ${this.tmp} ended at ${pos} of ${this.written} bytes written`);
          pos += bytesRead;
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
        } else if (this.ended?.error !== undefined) {
          throw this.ended.error;
        } else if (this.ended) {
          return;
        } else {
          await this.change();
        }
      }
    } finally {
      await closeFd(fd);
    }
  }

  /**
   * The temporary file, opened synchronously while the writer has not begun to rename it (the
   * descriptor then follows it through the rename); after that, the blob at its own path.
   */
  private async openNow(): Promise<number> {
    if (!this.renaming && !this.ended) return openSync(this.tmp, 'r');
    return openSync((await this.done).path, 'r');
  }

  private change(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
