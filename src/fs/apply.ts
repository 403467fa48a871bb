// Applying a layer onto a directory: OCI whiteouts and opaque dirs, links, owners, modes, xattrs,
// device nodes — with every path resolved inside the root so a hostile layer can't write outside it.
import { chmodSync, closeSync, createReadStream, constants as fsc, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { UserError } from '../errors.ts';
import { readTar, type TarHeader } from './tar.ts';
import { decompressStream } from './compress.ts';
import { hostExec } from './host-shell.ts';
import { cleanRelative, resolveInRoot } from './paths.ts';
import { IDENTITY_FILES, type LayerIndex } from './layer-index.ts';

export interface ApplyOptions {
  /** Set owners, xattrs and create device nodes (default: whether this process is root). */
  privileged?: boolean;
  /** Called for entries that can't be applied without privileges (device nodes). */
  onSkip?: (path: string, reason: string) => void;
  /**
   * 'apply' (default): whiteouts delete lower content. 'overlay': the layer is extracted on its own
   * as an overlayfs lower dir, so whiteouts become 0/0 char devices and opaque markers the
   * `trusted.overlay.opaque=y` xattr (needs root).
   */
  whiteouts?: 'apply' | 'overlay';
  /** Filled as the layer is read, as indexLayer (view.ts) would fill it: one pass serves both. */
  index?: LayerIndex;
  /** Sees every byte of the uncompressed tar, to its very end (e.g. to check the layer's diffID). */
  tarBytes?: (bytes: Uint8Array) => void;
}

export interface ApplyResult {
  entries: number;
  skipped: string[];
}

/** A layer blob: a file path, the bytes, or a stream of them. */
export type LayerSource = string | Uint8Array | AsyncIterable<Buffer | Uint8Array>;

function open_(src: LayerSource): AsyncIterable<Buffer | Uint8Array> {
  if (typeof src === 'string') return createReadStream(src, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  if (src instanceof Uint8Array) return (async function* () { yield src; })();
  return src;
}

/** Iterates the tar entries of a layer blob (gzip, zstd or plain, detected). */
export function readLayer(src: LayerSource): ReturnType<typeof readTar> {
  return readTar(decompressStream(open_(src)));
}

/**
 * The uncompressed tar of a layer blob, each piece shown to `see` first. The tar reader stops at
 * the end-of-archive blocks; `drain` then shows what follows them (a diffID covers every byte).
 */
function seenTar(src: LayerSource, see: (bytes: Uint8Array) => void) {
  const it = decompressStream(open_(src))[Symbol.asyncIterator]();
  const next = async (): Promise<IteratorResult<Buffer>> => {
    const r = await it.next();
    if (!r.done) see(r.value);
    return r;
  };
  // The reader's early return leaves the source open for `drain`; `close` ends it either way.
  const stream: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => ({ next, return: async () => ({ done: true, value: undefined }) }) };
  return {
    stream,
    drain: async (): Promise<void> => { while (!(await next()).done); },
    close: async (): Promise<void> => { await it.return?.(undefined); },
  };
}

function refuse(name: string, why: string): UserError {
  return new UserError(`layer entry ${JSON.stringify(name)} ${why}`, { hint: 'the layer is malformed or hostile; it was not applied past this entry' });
}

function writeFully(fd: number, data: Uint8Array, path: string): void {
  try {
    for (let off = 0; off < data.length;) off += writeSync(fd, data, off, data.length - off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).path === undefined) (e as NodeJS.ErrnoException).path = path;
    throw e;
  }
}

/** Sets extended attributes with `setfattr` (Node has no xattr API); never follows symlinks. */
export async function setXattrs(path: string, xattrs: ReadonlyMap<string, Buffer>): Promise<void> {
  for (const [k, v] of xattrs) {
    await hostExec(['setfattr', '-h', '-n', k, '-v', '0x' + v.toString('hex'), path]);
  }
}

/** Applies one layer onto `root` (which must exist). */
/**
 * Overlay whiteouts are 0/0 character devices; Node cannot mknod, so they are made in batches by
 * one shell each instead of one process per file. Each parent is resolved again first: a later
 * entry of the layer must not have turned it into a symlink that leads out of the root.
 */
async function makeWhiteoutDevices(root: string, items: Array<{ parent: string; victim: string }>): Promise<void> {
  for (const { parent, victim } of items) {
    if (resolveInRoot(root, parent) !== parent) throw refuse(victim, 'is a whiteout below a path the layer replaced with a symlink');
  }
  for (let i = 0; i < items.length; i += 256) {
    const paths = items.slice(i, i + 256).map((w) => posix.join(root, w.victim));
    await hostExec(['sh', '-c', 'for p do rm -rf -- "$p" && mknod -- "$p" c 0 0 || exit 1; done', 'sh', ...paths]);
  }
}

export async function applyLayer(src: LayerSource, root: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const privileged = opts.privileged ?? process.getuid?.() === 0;
  const written = new Set<string>(); // resolved paths this layer created (opaque dirs keep them)
  const dirMeta: Array<{ abs: string; mode: number; mtime: number }> = [];
  const skipped: string[] = [];
  let entries = 0;
  const whiteoutDevices: Array<{ parent: string; victim: string }> = [];

  const removeLower = async (relDir: string): Promise<void> => {
    let names: string[];
    try { names = await readdir(posix.join(root, relDir)); } catch { return; }
    for (const n of names) {
      const rel = relDir ? `${relDir}/${n}` : n;
      if (!written.has(rel)) await rm(posix.join(root, rel), { recursive: true, force: true });
      else if ((await lstat(posix.join(root, rel))).isDirectory()) await removeLower(rel);
    }
  };

  // One entry at a time, with synchronous calls: extraction is a sequential walk, and a round trip
  // through libuv's thread pool per syscall costs 10–20 times the syscall for the small files
  // layers are made of.
  const madeDirs = new Set<string>(); // parents known to exist as real directories (cleared on any removal)
  const remove = (abs: string): void => { rmSync(abs, { recursive: true, force: true }); madeDirs.clear(); };
  const ensureDir = (abs: string): void => {
    if (madeDirs.has(abs)) return;
    mkdirSync(abs, { recursive: true });
    madeDirs.add(abs);
  };
  const index = opts.index;
  const tar = opts.tarBytes ? seenTar(src, opts.tarBytes) : undefined;
  try {
    for await (const entry of tar ? readTar(tar.stream) : readLayer(src)) {
      const h: TarHeader = entry.header;
      entries++;
      index?.entries.push([h.name, h.type, h.mode, h.uid, h.gid, h.mtime, h.size, h.linkname]);
      const rel = cleanRelative(h.name);
      if (rel === null) throw refuse(h.name, 'climbs out of the root with ..');
      if (rel === '') continue; // the root itself keeps the metadata of its directory
      const slash = rel.lastIndexOf('/');
      const dirRel = slash === -1 ? '' : rel.slice(0, slash);
      const base = rel.slice(slash + 1);
      const parent = resolveInRoot(root, dirRel);

      const overlay = opts.whiteouts === 'overlay';
      if (base === '.wh..wh..opq') {
        if (!overlay) { await removeLower(parent); madeDirs.clear(); continue; }
        ensureDir(posix.join(root, parent));
        await setXattrs(posix.join(root, parent), new Map([['trusted.overlay.opaque', Buffer.from('y')]]));
        continue;
      }
      if (base.startsWith('.wh.')) {
        const victim = (parent ? parent + '/' : '') + base.slice(4);
        if (base.length === 4 || base.slice(4) === '..' || base.slice(4) === '.') throw refuse(h.name, 'is a whiteout of no file');
        if (overlay) {
          ensureDir(posix.join(root, parent));
          remove(posix.join(root, victim));
          whiteoutDevices.push({ parent, victim });
          continue;
        }
        remove(posix.join(root, victim));
        continue;
      }
      const target = (parent ? parent + '/' : '') + base;
      const abs = posix.join(root, target);
      try {
        ensureDir(posix.join(root, parent));
      } catch (e) {
        throw refuse(h.name, `has a parent that is not a directory (${(e as Error).message})`);
      }
      const existing = lstatSync(abs, { throwIfNoEntry: false });
      if (existing && !(existing.isDirectory() && h.type === 'dir')) remove(abs);

      switch (h.type) {
        case 'dir':
          if (!existing || !existing.isDirectory()) mkdirSync(abs, { mode: 0o700 });
          madeDirs.add(abs);
          break;
        case 'file': {
          const keep: Buffer[] | undefined = index && IDENTITY_FILES.includes(rel) ? [] : undefined;
          const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
          try {
            for await (const chunk of entry.body()) {
              writeFully(fd, chunk, abs);
              keep?.push(Buffer.from(chunk));
            }
          } finally {
            closeSync(fd);
          }
          if (keep) index!.files[h.name] = Buffer.concat(keep).toString('base64');
          break;
        }
        case 'symlink':
          symlinkSync(h.linkname, abs);
          break;
        case 'hardlink': {
          const t = cleanRelative(h.linkname);
          if (t === null || t === '') throw refuse(h.name, `is a hardlink to ${JSON.stringify(h.linkname)}, outside the root`);
          const ts = t.lastIndexOf('/');
          const tparent = resolveInRoot(root, ts === -1 ? '' : t.slice(0, ts));
          const tabs = posix.join(root, tparent, t.slice(ts + 1));
          const st = lstatSync(tabs, { throwIfNoEntry: false });
          if (!st) throw refuse(h.name, `is a hardlink to ${JSON.stringify(h.linkname)}, which does not exist in the layers`);
          if (st.isDirectory()) throw refuse(h.name, `is a hardlink to a directory (${JSON.stringify(h.linkname)})`);
          linkSync(tabs, abs);
          written.add(target);
          continue; // a hardlink shares its target's metadata
        }
        case 'char':
        case 'block':
        case 'fifo':
          if (!privileged && h.type !== 'fifo') {
            skipped.push(target);
            opts.onSkip?.(target, 'device nodes need root');
            continue;
          }
          await hostExec(['mknod', ...(h.type === 'fifo' ? [abs, 'p'] : [abs, h.type === 'char' ? 'c' : 'b', String(h.devmajor), String(h.devminor)])]);
          break;
      }
      written.add(target);
      if (privileged) {
        lchownSync(abs, h.uid, h.gid);
        if (h.xattrs.size > 0) await setXattrs(abs, h.xattrs);
      }
      if (h.type === 'dir') dirMeta.push({ abs, mode: h.mode, mtime: h.mtime });
      else {
        if (h.type !== 'symlink') chmodSync(abs, h.mode); // after chown, which clears setuid/setgid
        lutimesSync(abs, h.mtime, h.mtime);
      }
    }
    await tar?.drain();
  } finally {
    await tar?.close();
  }
  // OCI: a whiteout hides the lower layers' path only, never what this layer itself wrote there.
  await makeWhiteoutDevices(root, whiteoutDevices.filter((w) => !written.has(w.victim)));
  // Directory modes and times last: adding children changes mtimes, and a read-only dir would block them.
  for (const d of dirMeta.reverse()) {
    const st = lstatSync(d.abs, { throwIfNoEntry: false });
    if (!st?.isDirectory()) continue; // removed or replaced later in the same layer
    chmodSync(d.abs, d.mode);
    lutimesSync(d.abs, d.mtime, d.mtime);
  }
  return { entries, skipped };
}
