// A content-addressed blob store on a plain directory: `blobs/<alg>/<hex>`, written through a temp
// file in `tmp/` and renamed into place, so a reader (or a second process) never sees a partial blob.
// Every write is verified against its digest; a blob whose bytes no longer match is a miss and removed.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync, utimesSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, isDigest } from '../oci/index.ts';
import { writeAll } from '../write-all.ts';

export class DigestMismatchError extends Error {
  readonly expected: string;
  readonly actual: string;
  constructor(expected: string, actual: string, what: string) {
    super(`${what}: content has digest ${actual}, expected ${expected}`);
    this.name = 'DigestMismatchError';
    this.expected = expected;
    this.actual = actual;
  }
}

export interface StoredBlob {
  digest: string;
  size: number;
  /** Last time the blob was written or used (its mtime; `touch` moves it). */
  lastUsed: Date;
}

export interface PruneOptions {
  /** Digests that must stay whatever the budget. Without `maxBytes`, everything else goes. */
  keep?: Iterable<string>;
  /** Remove least recently used blobs (not in `keep`) until the store holds at most this many bytes. */
  maxBytes?: number;
}

export interface PruneResult {
  removed: string[];
  freedBytes: number;
  keptBytes: number;
}

type BlobSource = Uint8Array | AsyncIterable<Uint8Array>;

const staleTempMs = 60 * 60 * 1000;

export class ContentStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  /** Where the blob lives (whether or not it is there yet). */
  path(digest: string): string {
    if (!isDigest(digest)) throw new Error(`invalid digest "${digest}": expected sha256:<64 hex>`);
    const [alg, hex] = digest.split(':');
    return join(this.root, 'blobs', alg, hex);
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  /**
   * Size in bytes, or undefined when the blob is absent. Here and in `read` and `touch`: one
   * synchronous call, not a thread-pool round trip — a cached build makes dozens of them in a row.
   */
  async size(digest: string): Promise<number | undefined> {
    const s = statSync(this.path(digest), { throwIfNoEntry: false });
    return s?.isFile() ? s.size : undefined;
  }

  /**
   * Stores bytes from a buffer or a stream. With `expectedDigest`, content that hashes differently is
   * refused (DigestMismatchError) and nothing is stored. Returns the sha256 digest and size.
   */
  async put(source: BlobSource, expectedDigest?: string): Promise<{ digest: string; size: number }> {
    if (expectedDigest !== undefined && !isDigest(expectedDigest)) throw new Error(`invalid digest "${expectedDigest}"`);
    const algorithm = expectedDigest?.startsWith('sha512:') ? 'sha512' : 'sha256';
    if (source instanceof Uint8Array) {
      const digest = digestOf(algorithm, source);
      if (expectedDigest !== undefined && digest !== expectedDigest) throw new DigestMismatchError(expectedDigest, digest, 'blob');
      if ((await this.size(digest)) === source.length) {
        await this.touch(digest);
        return { digest, size: source.length };
      }
    }
    const tmp = await this.tempPath();
    const hash = createHash(algorithm);
    let size = 0;
    const fh = await open(tmp, 'wx', 0o644);
    try {
      try {
        const chunks: AsyncIterable<Uint8Array> | Uint8Array[] = source instanceof Uint8Array ? [source] : source;
        for await (const chunk of chunks) {
          hash.update(chunk);
          size += chunk.length;
          await writeAll(fh, chunk, tmp);
        }
      } finally {
        await fh.close();
      }
      const digest = `${algorithm}:${hash.digest('hex')}`;
      if (expectedDigest !== undefined && digest !== expectedDigest) throw new DigestMismatchError(expectedDigest, digest, 'blob');
      const dest = this.path(digest);
      await mkdir(join(dest, '..'), { recursive: true });
      await rename(tmp, dest);
      return { digest, size };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Copies a local file into the store (streamed, verified). */
  async putFile(file: string, expectedDigest?: string): Promise<{ digest: string; size: number }> {
    return this.put(createReadStream(file, { highWaterMark: 1 << 20 }), expectedDigest);
  }

  /**
   * Re-hashes the blob. True when present and intact; a blob whose bytes no longer match its name
   * is removed and reported as absent (a corrupt cache entry is a miss, never a broken build).
   */
  async verify(digest: string): Promise<boolean> {
    const file = this.path(digest);
    const hash = createHash(digest.slice(0, digest.indexOf(':')));
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return false;
      throw err;
    }
    if (`${digest.slice(0, digest.indexOf(':'))}:${hash.digest('hex')}` === digest) return true;
    await rm(file, { force: true });
    return false;
  }

  /** The whole blob (a config, a manifest: small), verified; undefined when absent or corrupt (and then removed). */
  async read(digest: string): Promise<Buffer | undefined> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path(digest));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const alg = digest.slice(0, digest.indexOf(':'));
    if (digestOf(alg, bytes) !== digest) {
      await rm(this.path(digest), { force: true });
      return undefined;
    }
    await this.touch(digest);
    return bytes;
  }

  /** Marks a blob as used now, so `prune` by budget keeps it over older ones. */
  async touch(digest: string): Promise<void> {
    const now = new Date();
    try {
      utimesSync(this.path(digest), now, now);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  async list(): Promise<StoredBlob[]> {
    const out: StoredBlob[] = [];
    for (const alg of await readdirOrEmpty(join(this.root, 'blobs'))) {
      for (const hex of await readdirOrEmpty(join(this.root, 'blobs', alg))) {
        const digest = `${alg}:${hex}`;
        if (!isDigest(digest)) continue;
        try {
          const s = await stat(join(this.root, 'blobs', alg, hex));
          if (s.isFile()) out.push({ digest, size: s.size, lastUsed: s.mtime });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
      }
    }
    return out;
  }

  /** Removes blobs not in `keep` (all of them, or the least recently used ones over `maxBytes`). */
  async prune(options: PruneOptions): Promise<PruneResult> {
    const keep = new Set(options.keep ?? []);
    const blobs = await this.list();
    let total = blobs.reduce((n, b) => n + b.size, 0);
    const candidates = blobs.filter((b) => !keep.has(b.digest)).sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
    const removed: string[] = [];
    let freedBytes = 0;
    for (const b of candidates) {
      if (options.maxBytes !== undefined && total <= options.maxBytes) break;
      await this.remove(b.digest);
      removed.push(b.digest);
      freedBytes += b.size;
      total -= b.size;
    }
    await this.removeStaleTemps();
    return { removed, freedBytes, keptBytes: total };
  }

  private async tempPath(): Promise<string> {
    const dir = join(this.root, 'tmp');
    await mkdir(dir, { recursive: true });
    return join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  /** Temp files left by a process that died mid-write; old enough that no live writer owns them. */
  private async removeStaleTemps(): Promise<void> {
    const dir = join(this.root, 'tmp');
    for (const name of await readdirOrEmpty(dir)) {
      try {
        const s = await stat(join(dir, name));
        if (Date.now() - s.mtimeMs > staleTempMs) await rm(join(dir, name), { force: true });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
}
