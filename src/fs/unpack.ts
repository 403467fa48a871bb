// ADD's archive extraction as layer entries, confined to the destination directory as BuildKit's
// is (solver/llbsolver/file/unpack.go → chrootarchive.Untar: the archive is applied as if `dest`
// were the root): every entry's parent is resolved through the symlinks written so far (the
// archive's own, then the image's) with absolute targets and `..` clamped at `dest`; the entry
// itself replaces what is at its path (the last component is never followed).
import { UserError } from '../errors.ts';
import { archiveEntries } from './archive.ts';
import { cleanRelative, resolveThroughLinks } from './paths.ts';
import type { ContentSource, LayerEntry } from './writer.ts';

export interface UnpackOptions {
  /** The archive's name, for errors. */
  name: string;
  /** The destination directory in the image (clean, no leading slash; '' for the root). */
  dest: string;
  /** The image's symlink at a path (no leading slash), if any. */
  linkAt: (path: string) => Promise<string | undefined>;
  onTemp: (dir: string) => void;
}

/** The archive's entries as layer entries under `dest`, in archive order (a later entry wins). */
export async function unpackInto(content: ContentSource, opts: UnpackOptions): Promise<LayerEntry[]> {
  const { dest, name } = opts;
  const out = new Map<string, LayerEntry>();
  const linkIn = async (p: string): Promise<string | undefined> => {
    // What the archive wrote shadows the image, and a path below one it replaced is gone.
    const own = out.get(p);
    if (own) return own.type === 'symlink' ? own.linkTarget : undefined;
    return opts.linkAt(p);
  };
  for await (const a of archiveEntries(content, name, { onTemp: opts.onTemp })) {
    // go-archive: names are cleaned ("" and "./" become "." and are skipped); a name that climbs
    // above the archive's root is refused ("breakout").
    const rel = cleanRelative(a.path);
    if (rel === null) throw new UserError(`ADD failed: archive ${name} has entry ${JSON.stringify(a.path)} that climbs out of the destination`);
    if (rel === '') continue;
    const path = await resolveThroughLinks(dest, rel, linkIn, false);
    if (path === dest) continue; // resolved to the destination itself
    let linkTarget = a.linkTarget;
    if (a.type === 'hardlink') {
      const to = cleanRelative(a.linkTarget ?? '');
      if (to === null || to === '') throw new UserError(`ADD failed: archive ${name} has hardlink ${JSON.stringify(a.path)} to ${JSON.stringify(a.linkTarget)}, outside the archive`);
      linkTarget = await resolveThroughLinks(dest, to, linkIn, false);
    }
    // A replaced path takes its old children with it (a file over a directory).
    if (out.has(path) && !(out.get(path)!.type === 'dir' && a.type === 'dir')) {
      for (const k of [...out.keys()]) if (k.startsWith(path + '/')) out.delete(k);
    }
    out.delete(path); // re-inserted last: the map's order is the order entries were written
    out.set(path, { ...a, path, linkTarget });
  }
  return [...out.values()];
}
