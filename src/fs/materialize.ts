// A layer's entries made into a directory as extracting the layer's tar (overlay form) would make
// them, without the tar: a COPY's files go straight into a lower dir for the RUN after it, whose
// layer is then written from that dir while the RUN runs.
import { chmodSync, closeSync, constants as fsc, copyFileSync, fstatSync, lchownSync, linkSync, lutimesSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { posix } from 'node:path';
import { UserError } from '../errors.ts';
import type { LayerEntry } from './writer.ts';

/**
 * Makes `entries` (normalized: normalizeEntries) in the empty directory `root`, as root. Returns the
 * entries with each file's content read from its copy in `root` (the layer written from them is
 * what `root` holds), or undefined for entries this does not make (device nodes, fifos, extended
 * attributes, a path below a symlink): applyLayer's work, from the written tar, then.
 */
export async function materializeEntries(entries: LayerEntry[], root: string): Promise<LayerEntry[] | undefined> {
  if (entries.some((e) => (e.type !== 'file' && e.type !== 'dir' && e.type !== 'symlink' && e.type !== 'hardlink') || (e.xattrs && Object.keys(e.xattrs).length > 0))) return undefined;
  const dirs = new Set<string>(['']);
  const dirMeta: Array<{ abs: string; mode: number; mtime: number }> = [];
  const out: LayerEntry[] = [];
  for (const e of entries) {
    const slash = e.path.lastIndexOf('/');
    if (!dirs.has(slash === -1 ? '' : e.path.slice(0, slash))) return undefined;
    const abs = posix.join(root, e.path);
    switch (e.type) {
      case 'dir':
        mkdirSync(abs, { mode: 0o700 });
        dirs.add(e.path);
        dirMeta.push({ abs, mode: e.mode & 0o7777, mtime: e.mtime });
        break;
      case 'symlink':
        symlinkSync(e.linkTarget ?? '', abs);
        break;
      case 'hardlink':
        linkSync(posix.join(root, e.linkTarget ?? ''), abs);
        out.push(e);
        continue; // shares its target's metadata
      case 'file':
        await copyContent(e, abs);
        break;
    }
    lchownSync(abs, e.uid, e.gid);
    if (e.type === 'file') {
      chmodSync(abs, e.mode & 0o7777); // after chown, which clears setuid/setgid
      out.push({ ...e, content: { path: abs } });
    } else out.push(e);
    if (e.type !== 'dir') lutimesSync(abs, e.mtime, e.mtime);
  }
  // Directory modes and times last: adding children changes mtimes, and a read-only dir would block them.
  for (const d of dirMeta.reverse()) {
    chmodSync(d.abs, d.mode);
    lutimesSync(d.abs, d.mtime, d.mtime);
  }
  return out;
}

/** A file entry's bytes into `abs`, checked against its planned size as the layer writer checks them. */
async function copyContent(e: LayerEntry, abs: string): Promise<void> {
  const c = e.content;
  const size = e.size ?? 0;
  let got: number;
  if (c && 'path' in c) {
    copyFileSync(c.path, abs, fsc.COPYFILE_EXCL);
    const fd = openSync(abs, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try { got = fstatSync(fd).size; } finally { closeSync(fd); }
  } else {
    const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    got = 0;
    try {
      const write = (b: Uint8Array): void => { for (let off = 0; off < b.length;) off += writeSync(fd, b, off, b.length - off); got += b.length; };
      if (c && 'buffer' in c) write(c.buffer);
      else if (c) for await (const b of c.stream()) write(b);
    } finally {
      closeSync(fd);
    }
  }
  if (got !== size) throw new UserError(`${e.path} changed while it was being copied (expected ${size} bytes, read ${got})`, { hint: 'make sure nothing writes to the build context during the build' });
}
