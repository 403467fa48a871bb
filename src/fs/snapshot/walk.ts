// The walk-and-compare snapshotter, for a rootfs that is a plain directory (no overlay mount): the
// tree is recorded before the step and compared after, and the changes come out as overlayfs would
// have recorded them, so the layer is byte-identical to the overlay snapshotter's.
import { randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { posix } from 'node:path';
import { setXattrs } from '../apply.ts';
import { comparePaths } from '../paths.ts';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../writer.ts';
import { dropUntouchedDirs, entryOf, readXattrsTree, recOf, sameDirTime, walkTree, type Rec } from './records.ts';

export interface TreeManifest { root: string; recs: Map<string, Rec> }

/** Records the tree before a step: type, mode, owner, size, times, inode, link target, xattrs. */
export async function recordTree(root: string): Promise<TreeManifest> {
  const xattrs = await readXattrsTree(root);
  const recs = new Map<string, Rec>();
  await walkTree(root, async (rel, abs) => {
    let r = await recOf(abs, xattrs, rel);
    if (r.type === 'file' && r.nlink > 1) {
      await breakHardlink(root, rel, r);
      r = await recOf(abs, xattrs, rel);
      const parent = posix.dirname(rel);
      if (parent !== '.') recs.set(parent, await recOf(posix.join(root, parent), xattrs, parent));
    }
    recs.set(rel, r);
    return r.type === 'dir';
  });
  return { root, recs };
}

/**
 * Gives `rel` an inode of its own (same bytes, mode, owner, times, xattrs), its directory keeping
 * its times. Before a step every name is its own file, as in an overlay lower: overlayfs copies up
 * only the name a step writes through and leaves the other names of that inode as they were, so a
 * plain directory must not let a write through one name show through another (the layers of both
 * snapshotters would differ).
 */
async function breakHardlink(root: string, rel: string, r: Rec): Promise<void> {
  const abs = posix.join(root, rel);
  const dir = posix.dirname(abs);
  const dirStat = await stat(dir);
  const tmp = posix.join(dir, `.slipway-unlink-${randomBytes(6).toString('hex')}`);
  try {
    await copyFile(abs, tmp);
    await chown(tmp, r.uid, r.gid);
    await chmod(tmp, r.mode);
    if (r.xattrs) await setXattrs(tmp, new Map(Object.entries(r.xattrs)));
    await utimes(tmp, (await stat(abs)).atime, Number(r.mtimeNs) / 1e9);
    await rename(tmp, abs);
  } finally {
    await rm(tmp, { force: true });
  }
  await utimes(dir, dirStat.atime, dirStat.mtime);
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
    if (r.type === 'dir' && !r.xattrs && b && b.type === 'dir' && !replacedDirs.has(rel) && sameDirTime(b.mtimeNs, r.mtimeNs) && sameMeta(b, r)) untouched.add(rel);
  }
  return dropUntouchedDirs([...out.values()], untouched).sort((a, b) => comparePaths(a.path, b.path));
}
