// Snapshots of RUN changes. Overlay: base layers extracted once each into a store (keyed by
// diffID) and stacked as lower dirs; the upper dir is the change. Walk: where overlay can't be
// mounted, record the tree before the step and compare after. Both yield the same layer entries;
// whiteouts and opaque markers carry mtime 0 so the layer doesn't depend on when the step ran.
import { lstat, readdir, readlink, mkdir, rename, rm, stat, mkdtemp, writeFile } from 'node:fs/promises';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { promisify } from 'node:util';
import { posix } from 'node:path';
import { UserError } from '../errors.ts';
import { applyLayer, type LayerSource } from './apply.ts';
import { whiteoutEntry, opaqueEntry, type LayerEntry, type EntryType } from './writer.ts';
import { comparePaths } from './paths.ts';
import { decompressStream } from './compress.ts';

const run = promisify(execFile);

/** xattrs of every node under `root` (one `getfattr -R` run); {} when getfattr is missing. */
export async function readXattrsTree(root: string): Promise<Map<string, Record<string, Buffer>>> {
  const out = new Map<string, Record<string, Buffer>>();
  const text = await new Promise<string>((resolve) => {
    const p = spawn('getfattr', ['-R', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', root], { stdio: ['ignore', 'pipe', 'ignore'] });
    let s = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (s += d));
    p.on('error', () => resolve(''));
    p.on('close', () => resolve(s));
  });
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

interface Rec {
  type: EntryType | 'whiteout';
  mode: number; uid: number; gid: number; size: number; mtime: number;
  ctimeNs: bigint; mtimeNs: bigint; birthNs: bigint; ino: bigint; nlink: number;
  linkTarget?: string; dev?: [number, number]; xattrs?: Record<string, Buffer>;
}

async function recOf(abs: string, xattrs: Map<string, Record<string, Buffer>>, rel: string): Promise<Rec> {
  const st = await lstat(abs, { bigint: true });
  const type: EntryType = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'file';
  const rdev = Number(st.rdev);
  const x = Object.fromEntries(Object.entries(xattrs.get(rel) ?? {}).filter(([k]) => !isOverlayKey(k)));
  return {
    type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: type === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeMs / 1000n), ctimeNs: st.ctimeNs, mtimeNs: st.mtimeNs, birthNs: st.birthtimeNs, ino: st.ino, nlink: Number(st.nlink),
    linkTarget: type === 'symlink' ? await readlink(abs) : undefined,
    dev: type === 'char' || type === 'block' ? [Math.floor(rdev / 256) & 0xfff, (rdev & 0xff) | ((rdev >> 12) & 0xfff00)] : undefined,
    xattrs: Object.keys(x).length ? x : undefined,
  };
}

async function walkTree(root: string, each: (rel: string, abs: string) => Promise<boolean | void>): Promise<void> {
  const go = async (rel: string): Promise<void> => {
    for (const name of (await readdir(posix.join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const descend = await each(r, posix.join(root, r));
      if (descend) await go(r);
    }
  };
  await go('');
}

function entryOf(rel: string, abs: string, r: Rec, links: Map<bigint, string>): LayerEntry {
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

// ---------------------------------------------------------------------------------------------
// Overlay

/** Extractions under way in this process, by target dir: concurrent callers share one. */
const extracting = new Map<string, Promise<string>>();

/**
 * Extracts a layer once into `<store>/<hex of diffID>` as an overlay lower dir; returns its path.
 * Safe for concurrent callers, in this process and in others sharing the store: a finished dir is
 * never replaced (it may be some overlay's lower dir), and a dir without its `.done` marker is a
 * leftover of a crash and is replaced.
 */
export function extractLayerOnce(store: string, diffID: string, source: LayerSource): Promise<string> {
  const hex = diffID.replace(/^sha256:/, '');
  const dir = posix.join(store, hex);
  let p = extracting.get(dir);
  if (!p) {
    p = extractInto(store, dir, posix.join(store, hex + '.done'), source, diffID).finally(() => extracting.delete(dir));
    extracting.set(dir, p);
  }
  return p;
}

/**
 * The store is shared by every later build, so a layer goes in only when its uncompressed bytes
 * are the diffID it is filed under (an image config or a cache record could claim any diffID).
 */
async function verifyDiffID(source: LayerSource, diffID: string): Promise<void> {
  if (typeof source !== 'string' && !(source instanceof Uint8Array)) return; // a one-shot stream: the caller verified it
  const h = createHash('sha256');
  const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : (async function* () { yield source; })();
  for await (const b of decompressStream(input as AsyncIterable<Buffer>)) h.update(b);
  const got = 'sha256:' + h.digest('hex');
  if (got !== diffID) throw new UserError(`layer content does not match its diffID ${diffID} (it is ${got})`, { hint: 'the image config or the cache record is wrong or was tampered with; the layer was not used' });
}

async function extractInto(store: string, dir: string, marker: string, source: LayerSource, diffID: string): Promise<string> {
  const done = async () => Boolean(await stat(marker).catch(() => null));
  if (await done()) return dir;
  await verifyDiffID(source, diffID);
  await mkdir(store, { recursive: true });
  const tmp = await mkdtemp(posix.join(store, '.extract-'));
  try {
    await applyLayer(source, tmp, { whiteouts: 'overlay', privileged: true });
    if (await done()) {
      await rm(tmp, { recursive: true, force: true }); // another process finished first
      return dir;
    }
    await rm(dir, { recursive: true, force: true });
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another process renamed its copy into place between our check and our rename.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      await rm(tmp, { recursive: true, force: true });
      return dir;
    }
    await writeFile(marker, '');
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}

export interface OverlayMount {
  mergedDir: string;
  upperDir: string;
  /** Unmounts and moves the upper dir into the extracted-layer store as the lower dir of `diffID`. */
  keepUpper(store: string, diffID: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Mounts lowers (bottom first) with a fresh upper dir under `workRoot`. Needs root. */
export async function prepareOverlay(lowers: string[], workRoot: string): Promise<OverlayMount> {
  await mkdir(workRoot, { recursive: true });
  const base = await mkdtemp(posix.join(workRoot, 'ovl-'));
  const [upperDir, workDir, mergedDir, empty] = ['upper', 'work', 'merged', 'empty'].map((d) => posix.join(base, d));
  for (const d of [upperDir, workDir, mergedDir, empty]) await mkdir(d);
  const lower = (lowers.length ? [...lowers].reverse() : [empty]).join(':');
  try {
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upperDir},workdir=${workDir}`, mergedDir]);
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw new UserError(`cannot mount overlayfs: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, { hint: 'overlayfs needs root and a kernel and filesystem that support it' });
  }
  let mounted = true;
  const unmount = async (): Promise<void> => {
    if (!mounted) return;
    await run('umount', [mergedDir]).catch(() => run('umount', ['-l', mergedDir]));
    mounted = false;
  };
  return {
    mergedDir, upperDir,
    async keepUpper(store, diffID) {
      // The upper dir holds the step's layer exactly as an extracted lower: whiteouts as 0/0 char
      // devices, opaque dirs by xattr. Keeping it saves extracting the new layer again.
      await unmount();
      const hex = diffID.replace(/^sha256:/, '');
      const marker = posix.join(store, hex + '.done');
      const dir = posix.join(store, hex);
      // Someone else is extracting or has extracted this layer: theirs may already be in use.
      if (extracting.has(dir) || (await stat(marker).catch(() => null))) return;
      await mkdir(store, { recursive: true });
      await rm(dir, { recursive: true, force: true });
      try {
        await rename(upperDir, dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        return; // another step made the same layer at the same time
      }
      await writeFile(marker, '');
    },
    cleanup: async () => {
      await unmount();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Whether overlay can be mounted here (root, kernel support, a filesystem that takes upper dirs). */
export async function overlaySupported(workRoot: string): Promise<boolean> {
  if (process.getuid?.() !== 0) return false;
  try {
    const m = await prepareOverlay([], workRoot);
    await m.cleanup();
    return true;
  } catch {
    return false;
  }
}

/** The layer entries of an overlay upper dir: 0/0 char devices → whiteouts, opaque xattr → marker. */
export async function diffOverlayUpper(upperDir: string, lowers: string[] = []): Promise<LayerEntry[]> {
  const xattrs = await readXattrsTree(upperDir);
  const out: LayerEntry[] = [];
  const links = new Map<bigint, string>();
  const candidates = new Map<string, Rec>();
  const opaqueDirs: string[] = [];
  await walkTree(upperDir, async (rel, abs) => {
    const r = await recOf(abs, xattrs, rel);
    if (r.type === 'char' && r.dev?.[0] === 0 && r.dev?.[1] === 0) { out.push(whiteoutEntry(rel)); return false; }
    out.push(entryOf(rel, abs, r, links));
    const opaque = r.type === 'dir' && xattrs.get(rel)?.['trusted.overlay.opaque']?.toString() === 'y';
    if (opaque) {
      out.push(opaqueEntry(rel));
      opaqueDirs.push(rel);
    } else if (r.type === 'dir' && !r.xattrs && !opaqueDirs.some((d) => rel.startsWith(d + '/'))) {
      // Below an opaque (recreated) dir nothing of the lowers shows, so nothing there is untouched.
      candidates.set(rel, r);
    }
    return r.type === 'dir';
  });
  // Only dirs with no change below them are checked against the lowers (few: the stubs' parents).
  const untouched = new Set<string>();
  const below = pathsWithChangesBelow(out);
  for (const [rel, r] of candidates) if (!below.has(rel) && (await sameAsVisibleLower(rel, r, lowers))) untouched.add(rel);
  return dropUntouchedDirs(out, untouched).sort((a, b) => comparePaths(a.path, b.path));
}

/**
 * Whether `rel` shows through the lowers as a directory with the same metadata (a bare copy-up):
 * top lower first; a whiteout, a non-directory or an opaque dir on the way hides what is below.
 */
async function sameAsVisibleLower(rel: string, r: Rec, lowers: string[]): Promise<boolean> {
  const parts = rel.split('/');
  for (let i = lowers.length - 1; i >= 0; i--) {
    let hidden = false;
    for (let j = 1; j < parts.length; j++) {
      const st = await lstat(posix.join(lowers[i], ...parts.slice(0, j))).catch(() => null);
      if (!st) break;
      if (!st.isDirectory() || (await isOpaque(posix.join(lowers[i], ...parts.slice(0, j))))) { hidden = true; break; }
    }
    if (hidden) return false;
    const st = await lstat(posix.join(lowers[i], rel), { bigint: true }).catch(() => null);
    if (!st) continue;
    return st.isDirectory() && Number(st.mode & 0o7777n) === r.mode && Number(st.uid) === r.uid && Number(st.gid) === r.gid && st.mtimeNs === r.mtimeNs;
  }
  return false;
}

async function isOpaque(dir: string): Promise<boolean> {
  try {
    const { stdout } = await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', dir]);
    return stdout === 'y';
  } catch {
    return false; // no such attribute
  }
}

function pathsWithChangesBelow(entries: LayerEntry[]): Set<string> {
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
function dropUntouchedDirs(entries: LayerEntry[], untouched: Set<string>): LayerEntry[] {
  if (untouched.size === 0) return entries;
  const withChangesBelow = pathsWithChangesBelow(entries);
  return entries.filter((e) => !(e.type === 'dir' && untouched.has(e.path) && !withChangesBelow.has(e.path)));
}

// ---------------------------------------------------------------------------------------------
// Walk and compare

export interface TreeManifest { root: string; recs: Map<string, Rec> }

/** Records the tree before a step: type, mode, owner, size, times, inode, link target, xattrs. */
export async function recordTree(root: string): Promise<TreeManifest> {
  const xattrs = await readXattrsTree(root);
  const recs = new Map<string, Rec>();
  await walkTree(root, async (rel, abs) => {
    const r = await recOf(abs, xattrs, rel);
    recs.set(rel, r);
    return r.type === 'dir';
  });
  return { root, recs };
}

function sameMeta(a: Rec, b: Rec): boolean {
  const xa = JSON.stringify(Object.entries(a.xattrs ?? {}).map(([k, v]) => [k, v.toString('hex')]).sort());
  const xb = JSON.stringify(Object.entries(b.xattrs ?? {}).map(([k, v]) => [k, v.toString('hex')]).sort());
  return a.type === b.type && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.linkTarget === b.linkTarget && xa === xb && String(a.dev) === String(b.dev);
}

/**
 * The changes since `before` as layer entries, the way overlayfs would have recorded them: a node
 * whose ctime, inode, size, metadata, xattrs or link target changed is emitted whole (as a
 * copy-up would be); ancestors of changes come along; a replaced directory is opaque; deletions
 * are whiteouts of the topmost deleted path.
 */
export async function diffTree(before: TreeManifest): Promise<LayerEntry[]> {
  const root = before.root;
  const xattrs = await readXattrsTree(root);
  const now = new Map<string, Rec>();
  const out = new Map<string, LayerEntry>();
  const links = new Map<bigint, string>();
  const replacedDirs = new Set<string>();
  const changedPaths: string[] = [];
  await walkTree(root, async (rel, abs) => {
    const r = await recOf(abs, xattrs, rel);
    now.set(rel, r);
    const b = before.recs.get(rel);
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    const inReplaced = parent !== '' && [...replacedDirs].some((d) => parent === d || parent.startsWith(d + '/'));
    const changed = inReplaced || !b || b.ino !== r.ino || b.birthNs !== r.birthNs || b.ctimeNs !== r.ctimeNs || b.mtimeNs !== r.mtimeNs || b.size !== r.size || !sameMeta(b, r);
    // Inode numbers get reused; the birth time tells a recreated directory apart where the fs has one.
    if (r.type === 'dir' && b && b.type === 'dir' && (b.ino !== r.ino || b.birthNs !== r.birthNs)) replacedDirs.add(rel);
    if (changed) changedPaths.push(rel);
    return r.type === 'dir';
  });
  // Hardlink groups are emitted in path order so the first path carries the content.
  for (const rel of changedPaths.sort(comparePaths)) {
    out.set(rel, entryOf(rel, posix.join(root, rel), now.get(rel)!, links));
    if (replacedDirs.has(rel)) out.set(rel + '/.wh..wh..opq', opaqueEntry(rel));
  }
  for (const rel of before.recs.keys()) {
    if (now.has(rel)) continue;
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    if (parent !== '' && !before.recs.has(parent)) continue;
    if (parent !== '' && !now.has(parent)) continue; // the parent itself is deleted: one whiteout covers it
    if (parent !== '' && (now.get(parent)!.type !== 'dir' || replacedDirs.has(parent))) continue;
    out.set('\0' + rel, whiteoutEntry(rel));
  }
  // Ancestors of every change, with their current metadata (overlay copies them up).
  for (const e of [...out.values()]) {
    const p = e.path;
    for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
      const a = p.slice(0, i);
      if (!out.has(a)) out.set(a, entryOf(a, posix.join(root, a), now.get(a)!, links));
    }
  }
  // Directories whose ctime moved but whose metadata is as before (times put back) are untouched.
  const untouched = new Set<string>();
  for (const rel of changedPaths) {
    const b = before.recs.get(rel);
    const r = now.get(rel)!;
    if (r.type === 'dir' && !r.xattrs && b && b.type === 'dir' && !replacedDirs.has(rel) && b.mtimeNs === r.mtimeNs && sameMeta(b, r)) untouched.add(rel);
  }
  return dropUntouchedDirs([...out.values()], untouched).sort((a, b) => comparePaths(a.path, b.path));
}
