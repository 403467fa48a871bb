// What both snapshotters read of a tree: one record per node (type, mode, owner, size, times,
// inode, link target, device, xattrs), a sorted walk, and a record as a layer entry (hardlinks by
// inode). Directories that only came along are dropped the same way by both, so their layers match.
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { hostSequence } from '../host-shell.ts';
import type { EntryType, LayerEntry } from '../writer.ts';

const getfattr = ['getfattr', '-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names'];

/** xattrs of every node under `root` (one `getfattr -R` run); {} when getfattr is missing. */
export async function readXattrsTree(root: string): Promise<Map<string, Record<string, Buffer>>> {
  return readXattrsThen(root).xattrs;
}

/**
 * readXattrsTree, with `then` (a command) run right after getfattr by the same resident shell
 * (fs/host-shell.ts). `xattrs` resolves when getfattr is done; `then` settles with whether the
 * command exited 0.
 */
export function readXattrsThen(root: string, then?: string[]): { xattrs: Promise<Map<string, Record<string, Buffer>>>; then: Promise<boolean> } {
  const [read, after] = hostSequence(then ? [[...getfattr, root], then] : [[...getfattr, root]]);
  return { xattrs: read.then((r) => parseXattrs(root, r.stdout)), then: after ? after.then((r) => r.code === 0) : read.then((r) => r.code === 0) };
}

function parseXattrs(root: string, text: string): Map<string, Record<string, Buffer>> {
  const out = new Map<string, Record<string, Buffer>>();
  let cur: Record<string, Buffer> | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      // getfattr escapes special characters in names as octal (\012 etc.)
      const abs = line.slice(8).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      const rel = posix.relative(root, abs);
      cur = {};
      out.set(rel, cur);
    } else if (cur && line.includes('=')) {
      const i = line.indexOf('=');
      const v = line.slice(i + 1);
      cur[line.slice(0, i)] = v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''));
    }
  }
  return out;
}

const isOverlayKey = (k: string): boolean => k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.');

/**
 * Whether a directory's mtime is the one it had: within a microsecond. A RUN's mountpoint stubs
 * are removed and their parent dirs get their times back (runtime/rootpath.ts removeStubs, as
 * BuildKit's executor MountStubsCleaner does to the nanosecond), but Node's utimes takes seconds
 * as a double, so a restored mtime is within a microsecond of the old one, not equal to it.
 */
export function sameDirTime(a: bigint, b: bigint): boolean {
  const d = a - b;
  return d < 1000n && d > -1000n;
}

export interface Rec {
  type: EntryType | 'whiteout';
  mode: number; uid: number; gid: number; size: number; mtime: number;
  ctimeNs: bigint; mtimeNs: bigint; birthNs: bigint; ino: bigint; nlink: number;
  linkTarget?: string; dev?: [number, number]; xattrs?: Record<string, Buffer>;
}

// Synchronous calls (here and in walkTree): a snapshot reads one entry after another, and a
// thread-pool round trip per lstat costs many times the call itself (see fs/apply.ts).
export async function recOf(abs: string, xattrs: Map<string, Record<string, Buffer>>, rel: string): Promise<Rec> {
  const st = lstatSync(abs, { bigint: true });
  const type: EntryType = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'file';
  const rdev = Number(st.rdev);
  const x = Object.fromEntries(Object.entries(xattrs.get(rel) ?? {}).filter(([k]) => !isOverlayKey(k)));
  return {
    type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeMs / 1000n), ctimeNs: st.ctimeNs, mtimeNs: st.mtimeNs, birthNs: st.birthtimeNs, ino: st.ino, nlink: Number(st.nlink),
    linkTarget: type === 'symlink' ? readlinkSync(abs) : undefined,
    dev: type === 'char' || type === 'block' ? [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)] : undefined,
    xattrs: Object.keys(x).length ? x : undefined,
  };
}

export async function walkTree(root: string, each: (rel: string, abs: string) => Promise<boolean | void>): Promise<void> {
  const go = async (rel: string): Promise<void> => {
    for (const name of readdirSync(posix.join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const descend = await each(r, posix.join(root, r));
      if (descend) await go(r);
    }
  };
  await go('');
}

export function entryOf(rel: string, abs: string, r: Rec, links: Map<bigint, string>): LayerEntry {
  const e: LayerEntry = {
    path: rel, type: r.type as EntryType, mode: r.mode, uid: r.uid, gid: r.gid, mtime: r.mtime,
    linkTarget: r.linkTarget, size: r.size, content: r.type === 'file' ? { path: abs } : undefined,
    xattrs: r.xattrs, devMajor: r.dev?.[0], devMinor: r.dev?.[1],
  };
  if (r.type === 'file' && r.nlink > 1) {
    const first = links.get(r.ino);
    if (first !== undefined) return { ...e, type: 'hardlink', linkTarget: first, content: undefined, size: 0 };
    links.set(r.ino, rel);
  }
  return e;
}

export function pathsWithChangesBelow(entries: LayerEntry[]): Set<string> {
  const below = new Set<string>();
  for (const e of entries) {
    for (let i = e.path.indexOf('/'); i !== -1; i = e.path.indexOf('/', i + 1)) below.add(e.path.slice(0, i));
  }
  return below;
}

/**
 * Drops directory entries that only came along (copied up, or with their times put back after a
 * step's mountpoints were removed) when nothing below them changed either — as BuildKit's differ
 * leaves them out. Both snapshotters use it, so their layers stay identical.
 */
export function dropUntouchedDirs(entries: LayerEntry[], untouched: Set<string>): LayerEntry[] {
  if (untouched.size === 0) return entries;
  const withChangesBelow = pathsWithChangesBelow(entries);
  return entries.filter((e) => !(e.type === 'dir' && untouched.has(e.path) && !withChangesBelow.has(e.path)));
}
