// The overlay snapshotter: lower dirs from the extracted-layer store, a fresh upper dir per step,
// and the upper dir read back as layer entries (0/0 char devices → whiteouts, the opaque xattr →
// an opaque marker; directories that were only copied up are left out).
import { lstat, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { UserError } from '../../errors.ts';
import { hostExec, hostRun } from '../host-shell.ts';
import { comparePaths } from '../paths.ts';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../writer.ts';
import { dropUntouchedDirs, entryOf, pathsWithChangesBelow, readXattrsThen, readXattrsTree, recOf, sameDirTime, walkTree, type Rec } from './records.ts';
import { adoptIntoStore } from './store.ts';


export interface OverlayMount {
  mergedDir: string;
  upperDir: string;
  /**
   * The upper dir read back as layer entries, once nothing runs in the merged dir any more: the
   * shell that reads its xattrs unmounts right after (queued with the read, no round trip through
   * this process), so the kernel's tear-down overlaps the walk.
   */
  diff(lowers: string[]): Promise<LayerEntry[]>;
  /** Unmounts (once; the same promise after `diff`). */
  unmount(): Promise<void>;
  /** Unmounts and moves the upper dir into the extracted-layer store as the lower dir of `diffID`. */
  keepUpper(store: string, diffID: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** Mounts lowers (bottom first) with a fresh upper dir under `workRoot`. Needs root. */
export async function prepareOverlay(lowers: string[], workRoot: string, opts: { nodev?: boolean } = {}): Promise<OverlayMount> {
  await mkdir(workRoot, { recursive: true });
  const base = await mkdtemp(posix.join(workRoot, 'ovl-'));
  const [upperDir, workDir, mergedDir, empty] = ['upper', 'work', 'merged', 'empty'].map((d) => posix.join(base, d));
  for (const d of [upperDir, workDir, mergedDir, empty]) await mkdir(d);
  const lower = (lowers.length ? [...lowers].reverse() : [empty]).join(':');
  try {
    // nodev (the default): a device node shipped in an image (or made by a step) opens nothing
    // through this mount, so a RUN step needs no nodev bind of its own (runtime/run.ts).
    const options = `${opts.nodev === false ? '' : 'nodev,'}lowerdir=${lower},upperdir=${upperDir},workdir=${workDir}`;
    await hostExec(['mount', '-t', 'overlay', 'overlay', '-o', options, mergedDir]);
  } catch (e) {
    await rm(base, { recursive: true, force: true });
    throw new UserError(`cannot mount overlayfs: ${(e as { stderr?: string }).stderr?.trim() || (e as Error).message}`, { hint: 'overlayfs needs root and a kernel and filesystem that support it' });
  }
  let unmounting: Promise<void> | undefined;
  const lazily = (): Promise<void> => hostExec(['umount', '-l', mergedDir]).then(() => undefined);
  const unmount = (): Promise<void> => unmounting ??= hostExec(['umount', mergedDir]).then(() => undefined, lazily);
  return {
    mergedDir, upperDir, unmount,
    diff(lowers) {
      if (unmounting) return upperEntries(upperDir, lowers, readXattrsTree(upperDir));
      const read = readXattrsThen(upperDir, ['umount', mergedDir]);
      unmounting = read.then.then((ok) => (ok ? undefined : lazily()));
      return upperEntries(upperDir, lowers, read.xattrs);
    },
    async keepUpper(store, diffID) {
      // The upper dir holds the step's layer exactly as an extracted lower: whiteouts as 0/0 char
      // devices, opaque dirs by xattr. Keeping it saves extracting the new layer again.
      await unmount();
      await adoptIntoStore(store, diffID, upperDir);
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
export function diffOverlayUpper(upperDir: string, lowers: string[] = []): Promise<LayerEntry[]> {
  return upperEntries(upperDir, lowers, readXattrsTree(upperDir));
}

async function upperEntries(upperDir: string, lowers: string[], xattrsRead: Promise<Map<string, Record<string, Buffer>>>): Promise<LayerEntry[]> {
  const xattrs = await xattrsRead;
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
    return st.isDirectory() && Number(st.mode & 0o7777n) === r.mode && Number(st.uid) === r.uid && Number(st.gid) === r.gid && sameDirTime(st.mtimeNs, r.mtimeNs);
  }
  return false;
}

async function isOpaque(dir: string): Promise<boolean> {
  const { code, stdout } = await hostRun(['getfattr', '--only-values', '-n', 'trusted.overlay.opaque', dir]);
  return code === 0 && stdout === 'y'; // else no such attribute
}
