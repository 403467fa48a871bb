// Content digests of context files kept across builds, keyed by what the kernel says of each file
// (device, inode, size, mtime and ctime in ns) — git's index idea — so a rebuild with nothing
// changed hashes no file again. ctime cannot be set by a user, so a file rewritten in place shows.
// Racy entries (changed within the clock tick before the index was written) are never trusted,
// and a file that changed while it was being hashed is not remembered.
//
// A context of 200,000 files has as many entries, kept for the whole build: in one table (a slot
// per path, digests as bytes in one buffer), read and written a line per file — the file is never
// one string or one buffer, nor an object per file.
import { open } from 'node:fs/promises';
import { statSync, type BigIntStats } from 'node:fs';
import { writeFileAtomic } from '../write-all.ts';

/**
 * A file's identity: device, inode, size, mtime and ctime in ns, joined by `:` — one string per
 * file rather than five (a COPY keeps one for each of its files until its layer is written).
 */
export type FileIdentity = string;

export function fileIdentity(s: BigIntStats): FileIdentity {
  return [s.dev, s.ino, s.size, s.mtimeNs, s.ctimeNs].join(':');
}

function identityOf(path: string): FileIdentity | undefined {
  const s = statSync(path, { bigint: true, throwIfNoEntry: false });
  return s?.isFile() ? fileIdentity(s) : undefined;
}

/** Files changed less than this before the index was saved may change again in the same tick. */
const racyNs = 20_000_000n;
/** Entries kept beyond those this build used (other contexts on the same cache dir). */
const keepOthers = 100_000;
/** Lines per piece of the saved file (~40 KB: young-generation strings, freed at once). */
const linesPerPiece = 256;

/** The first line of the file; then one JSON line per file: [path, identity, digest]. */
interface Header { version: 2; savedAtNs: string }

const hexDigest = /^[0-9a-f]{64}$/;
const identityShape = /^\d+:\d+:\d+:\d+:\d+$/;

/** a < b for decimal strings without leading zeros: by length, then by digit. */
function decimalBelow(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

/** The latest mtime or ctime (ns, decimal) among `identities`: what the racy rule looks at. */
export function newestChangeNs(identities: Iterable<FileIdentity>): string {
  let newest = '0';
  for (const identity of identities) {
    const [, , , mtimeNs, ctimeNs] = identity.split(':');
    if (decimalBelow(newest, mtimeNs)) newest = mtimeNs;
    if (decimalBelow(newest, ctimeNs)) newest = ctimeNs;
  }
  return newest;
}

/**
 * Whether something last changed at `newestNs` may still change within the clock tick it was seen
 * in, for a record saved at `savedAtNs`: such a record is never trusted — not when it is read back,
 * and not after a later save, which would otherwise carry it over as if it were older.
 */
export function racyAt(newestNs: string, savedAtNs: bigint): boolean {
  return !decimalBelow(newestNs, String(savedAtNs - racyNs));
}

/**
 * path → slot; per slot the identity (a string: the walk's own once this build used the file),
 * the digest's 32 bytes in one growing buffer, and whether this build used it.
 */
class FileTable {
  private readonly slots = new Map<string, number>();
  private readonly identities: FileIdentity[] = [];
  private digests = Buffer.alloc(32 * 1024);
  private used = new Uint8Array(1024);

  get(path: string): { identity: FileIdentity; digest: string } | undefined {
    const slot = this.slots.get(path);
    return slot === undefined ? undefined : { identity: this.identities[slot], digest: this.digests.toString('hex', slot * 32, slot * 32 + 32) };
  }

  /** Sets `path`'s identity and digest (64 hex digits); `used`: by this build. */
  set(path: string, identity: FileIdentity, digest: string, used: boolean): void {
    let slot = this.slots.get(path);
    if (slot === undefined) {
      slot = this.identities.length;
      this.slots.set(path, slot);
      this.identities.push(identity);
      this.grow(slot + 1);
    } else this.identities[slot] = identity;
    this.digests.write(digest, slot * 32, 32, 'hex');
    if (used) this.used[slot] = 1;
  }

  private grow(slots: number): void {
    if (this.used.length >= slots) return;
    const digests = Buffer.alloc(this.digests.length * 2);
    this.digests.copy(digests);
    this.digests = digests;
    const used = new Uint8Array(this.used.length * 2);
    used.set(this.used);
    this.used = used;
  }

  /** The entries this build used, then up to `others` it did not. */
  *entries(others: number): Generator<[path: string, identity: FileIdentity, digest: string]> {
    for (const pass of [1, 0]) {
      for (const [path, slot] of this.slots) {
        if (this.used[slot] !== pass) continue;
        if (pass === 0 && others-- <= 0) return;
        yield [path, this.identities[slot], this.digests.toString('hex', slot * 32, slot * 32 + 32)];
      }
    }
  }
}

/**
 * The lines of `file`, read 1 MiB at a time into one buffer (never the whole file at once). A
 * longer line is not an index line (an older slipway wrote its index as one line): it throws.
 */
async function* fileLines(file: string): AsyncGenerator<string> {
  const fh = await open(file);
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    let have = 0;
    for (;;) {
      if (have === buf.length) throw new Error(`${file}: a line longer than ${buf.length} bytes`);
      const { bytesRead } = await fh.read(buf, have, buf.length - have, null);
      have += bytesRead;
      let start = 0;
      for (let nl = buf.indexOf(0x0a, start); nl !== -1 && nl < have; nl = buf.indexOf(0x0a, start)) {
        yield buf.toString('utf8', start, nl);
        start = nl + 1;
      }
      if (bytesRead === 0) {
        if (start < have) yield buf.toString('utf8', start, have);
        return;
      }
      buf.copy(buf, 0, start, have);
      have -= start;
    }
  } finally {
    await fh.close();
  }
}

export class FileHashIndex {
  private readonly file: string;
  private readonly savedAtNs: bigint;
  private readonly table: FileTable;
  private changed = false;

  private constructor(file: string, savedAtNs: bigint, table: FileTable) {
    this.file = file;
    this.savedAtNs = savedAtNs;
    this.table = table;
  }

  /** The index in `file`; an unreadable or foreign one (an older slipway's too) is an empty index. */
  static async load(file: string): Promise<FileHashIndex> {
    const table = new FileTable();
    let savedAtNs = 0n;
    try {
      let first = true;
      for await (const text of fileLines(file)) {
        if (first) {
          first = false;
          const h = JSON.parse(text) as Header;
          if (h?.version !== 2 || typeof h.savedAtNs !== 'string' || !/^\d+$/.test(h.savedAtNs)) break;
          savedAtNs = BigInt(h.savedAtNs);
          continue;
        }
        let entry: unknown;
        try { entry = JSON.parse(text); } catch { continue; }
        const [path, identity, digest] = Array.isArray(entry) ? entry as unknown[] : [];
        if (typeof path !== 'string' || typeof identity !== 'string' || !identityShape.test(identity) || typeof digest !== 'string' || !hexDigest.test(digest)) continue;
        if (!racyAt(newestChangeNs([identity]), savedAtNs)) table.set(path, identity, digest, false);
      }
    } catch { savedAtNs = 0n; /* none yet, or not ours */ }
    return new FileHashIndex(file, savedAtNs, savedAtNs === 0n ? new FileTable() : table);
  }

  private racy(identity: FileIdentity): boolean {
    return racyAt(newestChangeNs([identity]), this.savedAtNs);
  }

  /**
   * The content digest (hex) of `path` when the index knows this very file, unchanged; `seen` is
   * its identity as a walk just read it (else it is stat'ed here).
   */
  lookup(path: string, seen?: FileIdentity): string | undefined {
    const known = this.table.get(path);
    if (!known) return undefined;
    const now = seen ?? identityOf(path);
    if (now === undefined || now !== known.identity || this.racy(now)) return undefined;
    this.table.set(path, now, known.digest, true);
    return known.digest;
  }

  /**
   * Hashes `path` with `hash` and remembers the digest (sha256 hex), unless the file changed
   * meanwhile (`kept` false); `seen` is its identity as a walk read it before (else it is stat'ed
   * here first).
   */
  async remember(path: string, hash: () => Promise<string>, seen?: FileIdentity): Promise<{ digest: string; kept: boolean }> {
    const before = seen ?? identityOf(path);
    const digest = await hash();
    const kept = before !== undefined && hexDigest.test(digest) && identityOf(path) === before;
    if (kept) {
      this.table.set(path, before, digest, true);
      this.changed = true;
    }
    return { digest, kept };
  }

  /** Writes the index (temp + rename) when anything new was learned. */
  async save(): Promise<void> {
    if (!this.changed) return;
    await writeFileAtomic(this.file, this.lines(String(BigInt(Date.now()) * 1_000_000n)));
  }

  /** The file's text, a piece at a time. */
  private *lines(savedAtNs: string): Generator<string> {
    yield JSON.stringify({ version: 2, savedAtNs } satisfies Header) + '\n';
    let piece = '';
    let count = 0;
    for (const entry of this.table.entries(keepOthers)) {
      piece += JSON.stringify(entry) + '\n';
      if (++count % linesPerPiece !== 0) continue;
      yield piece;
      piece = '';
    }
    if (piece) yield piece;
  }
}
