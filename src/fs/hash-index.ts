// Content digests of context files kept across builds, keyed by what the kernel says of each file
// (device, inode, size, mtime and ctime in ns) — git's index idea — so a rebuild with nothing
// changed hashes no file again. ctime cannot be set by a user, so a file rewritten in place shows.
// Racy entries (changed within the clock tick before the index was written) are never trusted,
// and a file that changed while it was being hashed is not remembered.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../write-all.ts';

type Identity = [dev: string, ino: string, size: string, mtimeNs: string, ctimeNs: string];
interface Saved { version: 1; savedAtNs: string; files: Record<string, [...Identity, string]> }

/** Files changed less than this before the index was saved may change again in the same tick. */
const racyNs = 20_000_000n;
/** Entries kept beyond those this build used (other contexts on the same cache dir). */
const keepOthers = 100_000;

function identityOf(path: string): Identity | undefined {
  const s = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (!s?.isFile()) return undefined;
  return [String(s.dev), String(s.ino), String(s.size), String(s.mtimeNs), String(s.ctimeNs)];
}

const same = (a: readonly string[], b: readonly string[]) => a.length >= 5 && a.slice(0, 5).every((v, i) => v === b[i]);

export class FileHashIndex {
  private readonly file: string;
  private readonly savedAtNs: bigint;
  private readonly old: Saved['files'];
  private readonly used = new Map<string, [...Identity, string]>();
  private changed = false;

  private constructor(file: string, saved: Saved | undefined) {
    this.file = file;
    this.savedAtNs = saved ? BigInt(saved.savedAtNs) : 0n;
    this.old = saved?.files ?? {};
  }

  /** The index in `file`; an unreadable or foreign one is an empty index. */
  static async load(file: string): Promise<FileHashIndex> {
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as Saved;
      if (saved.version === 1 && typeof saved.savedAtNs === 'string' && saved.files && typeof saved.files === 'object') return new FileHashIndex(file, saved);
    } catch { /* none yet, or not ours */ }
    return new FileHashIndex(file, undefined);
  }

  /**
   * The content digest (hex) of `path` when the index knows this very file, unchanged; `seen` is
   * its identity as a walk just read it (else it is stat'ed here).
   */
  lookup(path: string, seen?: readonly string[]): string | undefined {
    const known = this.used.get(path) ?? this.old[path];
    if (!known) return undefined;
    const now = seen ?? identityOf(path);
    if (!now || !same(known, now)) return undefined;
    if (BigInt(now[4]) >= this.savedAtNs - racyNs || BigInt(now[3]) >= this.savedAtNs - racyNs) return undefined;
    this.used.set(path, known);
    return known[5];
  }

  /**
   * Hashes `path` with `hash` and remembers the digest, unless the file changed meanwhile; `seen`
   * is its identity as a walk read it before (else it is stat'ed here first).
   */
  async remember(path: string, hash: () => Promise<string>, seen?: readonly string[]): Promise<string> {
    const before = seen ?? identityOf(path);
    const digest = await hash();
    const after = identityOf(path);
    if (before && after && same(before, after)) {
      this.used.set(path, [...after, digest]);
      this.changed = true;
    }
    return digest;
  }

  /** Writes the index (temp + rename) when anything new was learned. */
  async save(): Promise<void> {
    if (!this.changed) return;
    const files: Saved['files'] = {};
    let others = 0;
    for (const [p, v] of Object.entries(this.old)) {
      if (!this.used.has(p) && others++ < keepOthers) files[p] = v;
    }
    for (const [p, v] of this.used) files[p] = v;
    const saved: Saved = { version: 1, savedAtNs: String(BigInt(Date.now()) * 1_000_000n), files };
    await writeFileAtomic(this.file, JSON.stringify(saved));
  }
}
