// Source trees for COPY/ADD: a directory on disk (the build context after .dockerignore, or a
// stage's rootfs), or single in-memory/on-disk files (heredocs, downloads).
import { lstatSync, readdirSync, readlinkSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';
import type { ContentSource, EntryType } from './writer.ts';
import { fileIdentity } from './hash-index.ts';
import { resolveInRoot } from './paths.ts';

export interface SourceNode {
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkTarget?: string;
  /** Set when the file has other hardlinks: equal values are the same inode. */
  inode?: string;
  content?: ContentSource;
}

export interface SourceTree {
  /** For error messages: "the build context", "stage builder". */
  describe: string;
  /** A stage's or image's files: COPY without --chown keeps their owners (context files get 0:0). */
  keepOwners?: boolean;
  lstat(rel: string): Promise<SourceNode | undefined>;
  /** Child names, sorted; [] for a missing or non-directory path. */
  readdir(rel: string): Promise<string[]>;
  /** Resolves symlinks along `rel` inside the tree (the last component too). */
  resolve(rel: string): Promise<string>;
  /**
   * `readdir` and each child's `lstat` in one synchronous call, where the tree can: a COPY's walk
   * of a large context makes it once per directory instead of two awaited calls per file.
   */
  childrenSync?(rel: string): Array<{ name: string; node: SourceNode }>;
}

/** A directory on disk; `include(rel)` (e.g. .dockerignore) hides a path and everything under it. */
export function dirTree(root: string, opts: { describe?: string; include?: (rel: string) => boolean; keepOwners?: boolean; owners?: (rel: string) => { uid: number; gid: number } | undefined } = {}): SourceTree {
  const include = opts.include ?? (() => true);
  // A root given as a symlink is the directory it names (BuildKit: EvalSymlinks of the context).
  try { root = realpathSync(root); } catch { /* missing: every lookup finds nothing */ }
  // Paths `readdir` just listed passed `include` there: their lstat (a walk's next call) skips it,
  // and takes the host path readdir made by appending the name (posix.join's normalising was a
  // fifth of the JavaScript time of a cached COPY's walk).
  const listed = new Map<string, string>();
  /** A directory's names (none where it cannot be read), and the prefix that makes a child's host path. */
  const listing = (rel: string): { names: string[]; prefix: string } => {
    const dir = posix.join(root, rel);
    let names: string[];
    try { names = readdirSync(dir); } catch { names = []; }
    // The same path as posix.join(root, child): a name has no `/` and is never `.` or `..`.
    return { names, prefix: dir.endsWith('/') ? dir : `${dir}/` };
  };
  const childRel = (rel: string, name: string): string => (rel ? `${rel}/${name}` : name);
  // Synchronous calls: a COPY of a large context makes one per file, and the promise API's
  // thread-pool hop costs more than the call itself.
  const nodeAt = (abs: string, rel: string): SourceNode | undefined => {
    // bigint: the file's identity for the hash index (ns times) comes with it, no second stat.
    const st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
    if (!st) return undefined;
    const type: EntryType = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'file';
    // Owners from elsewhere (the layers' headers) where the files on disk could not be chowned.
    const own = opts.owners?.(rel) ?? { uid: Number(st.uid), gid: Number(st.gid) };
    return {
      type, mode: Number(st.mode & 0o7777n), uid: own.uid, gid: own.gid, size: type === 'file' ? Number(st.size) : 0, mtime: Number(st.mtimeNs / 1_000_000_000n),
      linkTarget: type === 'symlink' ? readlinkSync(abs) : undefined,
      inode: type === 'file' && st.nlink > 1n ? `${st.dev}:${st.ino}` : undefined,
      content: type === 'file' ? { path: abs, identity: fileIdentity(st) } : undefined,
    };
  };
  return {
    describe: opts.describe ?? root,
    keepOwners: opts.keepOwners,
    async lstat(rel) {
      let abs = listed.get(rel);
      if (abs !== undefined) listed.delete(rel);
      else if (rel !== '' && !include(rel)) return undefined;
      else abs = posix.join(root, rel);
      return nodeAt(abs, rel);
    },
    async readdir(rel) {
      const { names, prefix } = listing(rel);
      const kept: string[] = [];
      for (const n of names) {
        const child = childRel(rel, n);
        if (!include(child)) continue;
        listed.set(child, prefix + n);
        kept.push(n);
      }
      return kept.sort();
    },
    childrenSync(rel) {
      const { names, prefix } = listing(rel);
      const out: Array<{ name: string; node: SourceNode }> = [];
      for (const name of names.sort()) {
        const child = childRel(rel, name);
        if (!include(child)) continue;
        const node = nodeAt(prefix + name, child);
        if (node) out.push({ name, node });
      }
      return out;
    },
    resolve: async (rel) => resolveInRoot(root, rel),
  };
}

/** A pre-walked list of included paths (files and dirs, relative) as an `include` predicate; their parent dirs are included too. */
export function includeList(paths: Iterable<string>): (rel: string) => boolean {
  const set = new Set<string>();
  for (const p of paths) {
    const clean = p.split('/').filter((c) => c !== '' && c !== '.').join('/');
    for (let i = clean.indexOf('/'); i !== -1; i = clean.indexOf('/', i + 1)) set.add(clean.slice(0, i));
    set.add(clean);
  }
  return (rel) => set.has(rel);
}

/** One file, named `name`, for heredocs (`content` a string or bytes) or a downloaded file (`path`). */
export function fileTree(name: string, file: { content: ContentSource; size: number; mode: number; mtime: number }, describe = name): SourceTree {
  return {
    describe,
    async lstat(rel) {
      if (rel === '') return { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: file.mtime };
      if (rel !== name) return undefined;
      return { type: 'file', mode: file.mode, uid: 0, gid: 0, size: file.size, mtime: file.mtime, content: file.content };
    },
    readdir: async (rel) => (rel === '' ? [name] : []),
    resolve: async (rel) => rel,
  };
}
