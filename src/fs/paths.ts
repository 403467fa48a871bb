// Path helpers shared by the writer, the applier and COPY: cleaning layer paths, ordering them,
// and resolving a path inside a root directory the way securejoin does (symlinks stay in the root).
import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';
import { UserError } from '../errors.ts';

/** An empty, `.` or `..` component, or a leading or trailing slash: what cleaning changes. */
const unclean = /(^|\/)\.\.?(\/|$)|\/\/|^\/|\/$/;

/** `/a/./b/` → `a/b`; `..` may not climb above the root (returns null then). A clean path is returned as it is. */
export function cleanRelative(p: string): string | null {
  if (!unclean.test(p)) return p;
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(c);
  }
  return parts.join('/');
}

/** A path for a layer entry: relative, clean; a `..` that climbs above the root is an error. */
export function cleanLayerPath(p: string): string {
  const c = cleanRelative(p);
  if (c === null) throw new UserError(`layer path ${JSON.stringify(p)} climbs above the root`, { hint: 'paths inside an image may not use .. to leave it' });
  return c;
}

/**
 * Component-wise order: a directory sorts right before its children (`a`, `a/b`, `a-b`). Compared
 * code unit by code unit with `/` below every other unit and the end below `/` — the same order as
 * comparing the components one by one, without splitting (a sort of 200,000 paths calls it millions
 * of times). Only the sign of the result means anything.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x - y;
  }
  return a.length - b.length;
}

const SLASH = 0x2f;

const MAX_SYMLINKS = 255;

/**
 * Resolves `rel` inside `root` the way the container will see it (securejoin's rule), so a hostile
 * image can never make us create or touch anything outside it: every component is lstat'ed; a
 * symlink is followed with its target taken relative to the root (absolute) or its directory
 * (relative), and `..` never climbs above the root. `..` is not normalised away lexically: `link/..`
 * goes up from the link's target, as the kernel does. The last component is followed unless
 * `followLast` is false. Returns the resolved path relative to the root (missing components are
 * kept as named); join it to `root` for the host path.
 */
export function resolveInRoot(root: string, rel: string, followLast = true): string {
  const todo = splitPath(rel);
  const done: string[] = [];
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') { done.pop(); continue; }
    if (todo.length === 0 && !followLast) { done.push(c); break; }
    const host = posix.join(root, ...done, c);
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (!isLink) { done.push(c); continue; }
    if (++links > MAX_SYMLINKS) throw new UserError(`too many levels of symbolic links resolving ${rel}`);
    const target = readlinkSync(host);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...splitPath(target));
  }
  return done.join('/');
}

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `rel` (relative to `root`, both clean image paths without leading slash) through the
 * symlinks `linkAt` reports, as if `root` were `/` (fsutil's fs.RootPath / a chroot): an absolute
 * target starts again at `root`, `..` never climbs above it. The last component is followed too
 * unless `followLast` is false. Used for COPY destinations in the image (root '') and for ADD
 * archive entries confined to their destination directory.
 */
export async function resolveThroughLinks(root: string, rel: string, linkAt: (path: string) => Promise<string | undefined> | string | undefined, followLast = true): Promise<string> {
  const todo = splitPath(rel);
  const done: string[] = [];
  const at = (parts: string[]): string => [root, ...parts].filter((c) => c !== '').join('/');
  let links = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') { done.pop(); continue; }
    if (todo.length === 0 && !followLast) { done.push(c); break; }
    const target = await linkAt(at([...done, c]));
    if (target === undefined) { done.push(c); continue; }
    if (++links > MAX_SYMLINKS) throw new UserError(`too many levels of symbolic links resolving /${at(splitPath(rel))}`);
    if (target.startsWith('/')) done.length = 0;
    todo.unshift(...splitPath(target));
  }
  return at(done);
}
