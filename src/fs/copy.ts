// COPY and ADD as BuildKit does them, planned as layer entries without the destination rootfs:
// globs, directory contents, trailing-slash rules, renames, --chown/--chmod/--parents/--exclude,
// parent directories, and ADD's local archive extraction. Also the sources' content checksum.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import { UserError } from '../errors.ts';
import { sha256Hasher } from '../oci/index.ts';
import type { ContextHashes } from './context-hashes.ts';
import { newestChangeNs } from './hash-index.ts';
import { readAhead, type LayerEntry, type EntryType } from './writer.ts';
import type { SourceTree, SourceNode } from './tree.ts';
import { globMatch, hasGlobMeta, excludeMatch } from './glob.ts';
import { resolveChown, type IdentityFiles } from './identity.ts';
import { parseChmod } from './chmod.ts';
import { comparePaths, resolveThroughLinks } from './paths.ts';
import { isArchive } from './archive.ts';
import { unpackInto } from './unpack.ts';

/** Metadata of a path that already exists in the destination image (from its layers). */
export interface ExistingNode { type: EntryType; mode: number; uid: number; gid: number; mtime: number; linkTarget?: string }

export interface CopyRequest {
  instruction?: 'COPY' | 'ADD';
  /** Sources as written (after word expansion), relative to `from`'s root. */
  sources: string[];
  /** Destination as written; relative destinations are resolved against `workdir`. */
  dest: string;
  workdir?: string;
  from: SourceTree;
  chown?: string;
  chmod?: string;
  /** --link: the layer must not depend on the destination, so existing paths are not consulted. */
  link?: boolean;
  parents?: boolean;
  exclude?: string[];
  /** The target stage's /etc/passwd and /etc/group, for --chown names. */
  identity?: IdentityFiles;
  /** Looks up what exists at an image path (no leading slash) in the destination's layers. */
  existing?: (path: string) => Promise<ExistingNode | undefined>;
  /** mtime (seconds) of directories the copy creates. */
  mtime: number;
  /** ADD: extract local tar archives (gzip, bzip2, xz, zstd, plain) into the destination. */
  unpackArchives?: boolean;
}

const clamp = (p: string): string => {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return parts.join('/');
};

// Joined flat (Array join), not concatenated: a concatenated path is a rope, flattened into a
// second string once it is hashed as a Map key, and a COPY keeps its paths for the whole step.
const join = (a: string, b: string): string => (a === '' ? b : b === '' ? a : [a, b].join('/'));

interface Match { rel: string; name: string; node: SourceNode; pivot: string }

async function expand(tree: SourceTree, src: string, instr: string): Promise<Match[]> {
  // --parents pivot: `a/./b/c` keeps `b/c` under the destination.
  const pivotAt = src.indexOf('/./');
  const cleaned = clamp(src);
  const pivot = pivotAt === -1 ? '' : clamp(src.slice(0, pivotAt));
  const found: string[] = [];
  if (!hasGlobMeta(cleaned)) {
    found.push(cleaned);
  } else {
    let cur = [''];
    for (const comp of cleaned.split('/')) {
      const next: string[] = [];
      for (const dir of cur) {
        if (!hasGlobMeta(comp)) { next.push(join(dir, comp)); continue; }
        const real = await tree.resolve(dir);
        for (const n of await tree.readdir(real)) if (globMatch(comp, n)) next.push(join(dir, n));
      }
      cur = next;
    }
    for (const m of cur) found.push(m); // not push(...): a glob may match 200,000 names
  }
  const out: Match[] = [];
  for (const rel of found) {
    const node = await tree.lstat(await tree.resolve(rel));
    if (node) out.push({ rel: await tree.resolve(rel), name: rel, node, pivot });
  }
  if (out.length === 0) {
    throw new UserError(`${instr} failed: ${hasGlobMeta(cleaned) ? 'no source files match' : 'source not found:'} ${JSON.stringify(src)} in ${tree.describe}`, { hint: 'check the path and that .dockerignore does not exclude it' });
  }
  return out.sort((a, b) => comparePaths(a.name, b.name));
}

/** `cleanup` removes temporary files (large bodies from ADD archives); call it after writing the layer. */
export interface CopyPlan { entries: LayerEntry[]; cleanup(): Promise<void> }

/** Plans a COPY/ADD: the layer entries it produces, parents first. */
export async function planCopy(req: CopyRequest): Promise<CopyPlan> {
  const temps: string[] = [];
  try {
    return await plan(req, temps);
  } catch (e) {
    for (const d of temps) await rm(d, { recursive: true, force: true });
    throw e;
  }
}

async function plan(req: CopyRequest, temps: string[]): Promise<CopyPlan> {
  const instr = req.instruction ?? 'COPY';
  if (req.sources.length === 0) throw new UserError(`${instr} needs at least one source and a destination`);
  const existing = req.link ? undefined : req.existing;
  const linkAt = async (p: string): Promise<string | undefined> => {
    const ex = existing ? await existing(p) : undefined;
    return ex?.type === 'symlink' ? ex.linkTarget : undefined;
  };
  // The destination is resolved inside the image, through its symlinks and clamped to its root
  // (fsutil Copy: fs.RootPath(dstRoot, dst)), so `/link/sub/` writes into the link's target.
  const dest = await resolveThroughLinks('', posix.resolve('/', req.workdir ?? '/', req.dest).slice(1), linkAt);
  let destIsDir = req.dest.endsWith('/') || /(^|\/)\.$/.test(req.dest) || dest === '';
  if (req.sources.length > 1 && !destIsDir) {
    throw new UserError(`${instr} with more than one source needs a directory destination ending in /, got ${JSON.stringify(req.dest)}`, { hint: `write ${req.dest}/` });
  }
  const owner = req.chown ? resolveChown(req.chown, req.identity ?? {}) : undefined;
  const chmod = req.chmod ? parseChmod(req.chmod) : undefined;
  // Directories the copy creates (parents, and a copied directory's own new target) are 0755, or
  // the --chmod mode when it is octal (fsutil Copy/prepareTargetDir: MkdirAll(…, 0755 or ci.Mode)).
  const newDirMode = req.chmod && /^[0-7]+$/.test(req.chmod) ? parseInt(req.chmod, 8) : 0o755;
  const matches: Match[] = [];
  for (const s of req.sources) for (const m of await expand(req.from, s, instr)) matches.push(m);
  if (matches.length > 1) destIsDir = true;
  if (!destIsDir && existing && (await existing(dest))?.type === 'dir') destIsDir = true;

  const out = new Map<string, LayerEntry>();
  const cleanup = async (): Promise<void> => { for (const d of temps.splice(0)) await rm(d, { recursive: true, force: true }); };
  const inodes = new Map<string, string>();
  const excludes = req.exclude ?? [];
  const excluded = (...paths: string[]): boolean => excludes.some((p) => paths.some((x) => x !== '' && excludeMatch(p, x)));
  // Without --chown, files from a stage or image keep their owners; context files are 0:0
  // (BuildKit's mapUserToChowner(nil) keeps the source owner; the context arrives as 0:0).
  const keepOwner = req.from.keepOwners === true;
  // Paths whose parents may be missing from `out`: all but a walk's children, whose parent is the
  // walked directory (emitted before them) or the walk's target.
  const tops: string[] = [];
  const emit = async (path: string, n: SourceNode): Promise<void> => {
    if (existing) await refuseReplace(existing, instr, path, n.type === 'dir');
    record(path, n);
    tops.push(path);
  };
  const record = (path: string, n: SourceNode): void => {
    const mode = chmod && n.type !== 'symlink' ? chmod(n.mode, n.type === 'dir') : n.mode;
    const uid = owner ? owner.uid : keepOwner ? n.uid : 0;
    const gid = owner ? owner.gid : keepOwner ? n.gid : 0;
    const e: LayerEntry = { path, type: n.type, mode, uid, gid, mtime: n.mtime, linkTarget: n.linkTarget, content: n.content, size: n.size };
    if (n.type === 'file' && n.inode) {
      const first = inodes.get(n.inode);
      if (first !== undefined && first !== path) { out.set(path, { ...e, type: 'hardlink', linkTarget: first, content: undefined, size: 0 }); return; }
      inodes.set(n.inode, path);
    }
    out.set(path, e);
  };
  // A copied directory's own target: an existing directory keeps its metadata; a new one is made
  // as a created directory (0755 or the octal --chmod, root or --chown), with the source's times.
  const emitDirMeta = async (path: string, n: SourceNode): Promise<void> => {
    if (path === '') return;
    await refuseReplace(existing, instr, path, true);
    const ex = existing ? await existing(path) : undefined;
    if (ex?.type === 'dir') out.set(path, { path, type: 'dir', mode: ex.mode, uid: ex.uid, gid: ex.gid, mtime: ex.mtime });
    else out.set(path, { path, type: 'dir', mode: newDirMode, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: n.mtime });
    tops.push(path);
  };
  const from = req.from;
  const children = async (rel: string): Promise<Array<{ name: string; node: SourceNode | undefined }>> => {
    if (from.childrenSync) return from.childrenSync(rel);
    const listed: Array<{ name: string; node: SourceNode | undefined }> = [];
    for (const name of await from.readdir(rel)) listed.push({ name, node: await from.lstat(join(rel, name)) });
    return listed;
  };
  const walk = async (m: Match, srcRel: string, childRel: string, target: string): Promise<void> => {
    for (const { name, node: n } of await children(join(srcRel, childRel))) {
      const c = join(childRel, name);
      if (!n || (excludes.length && excluded(c, join(m.name, c)))) continue;
      const t = join(target, c);
      if (existing) await refuseReplace(existing, instr, t, n.type === 'dir');
      record(t, n);
      if (n.type === 'dir') await walk(m, srcRel, c, target);
    }
  };

  for (const m of matches) {
    if (excluded(m.name)) continue;
    const kept = req.parents ? clamp(m.pivot ? m.name.slice(m.pivot.length) : m.name) : '';
    if (m.node.type === 'dir') {
      const target = req.parents ? join(dest, kept) : dest;
      await emitDirMeta(target, m.node);
      await walk(m, m.rel, '', target);
    } else if (req.unpackArchives && m.node.type === 'file' && m.node.content && (await isArchive(m.node.content))) {
      for (const e of await unpackInto(m.node.content, { name: m.name, dest, linkAt, onTemp: (d) => temps.push(d) })) {
        if (owner) { e.uid = owner.uid; e.gid = owner.gid; }
        if (chmod && e.type !== 'symlink') e.mode = chmod(e.mode, e.type === 'dir');
        out.set(e.path, e);
        tops.push(e.path);
      }
    } else {
      const target = destIsDir ? join(dest, req.parents ? kept : posix.basename(m.name)) : dest;
      if (target === '') throw new UserError(`${instr} failed: cannot copy file ${m.name} onto the root directory`);
      await emit(target, m.node);
    }
  }
  // Parent directories: existing ones keep their metadata; created ones are 0755 with the copy's owner.
  // Each path's own parent is enough: a parent added here is visited too, and finds its own.
  for (let i = 0; i < tops.length; i++) {
    const path = tops[i];
    const slash = path.lastIndexOf('/');
    if (slash === -1) continue;
    const p = path.slice(0, slash);
    if (out.has(p)) continue;
    const ex = existing ? await existing(p) : undefined;
    out.set(p, ex?.type === 'dir'
      ? { path: p, type: 'dir', mode: ex.mode, uid: ex.uid, gid: ex.gid, mtime: ex.mtime }
      : { path: p, type: 'dir', mode: newDirMode, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0, mtime: req.mtime });
    tops.push(p);
  }
  return { entries: [...out.values()].sort((a, b) => comparePaths(a.path, b.path)), cleanup };
}

/**
 * What BuildKit refuses when a copy lands on an existing path of another kind (fsutil
 * copyDirectoryOnly: "cannot copy to non-directory"; ensureEmptyFileTarget: "cannot replace to
 * directory … with file"). A file over a file, or a directory into a directory, is fine.
 */
async function refuseReplace(existing: CopyRequest['existing'], instr: string, path: string, isDir: boolean): Promise<void> {
  const ex = existing && path !== '' ? await existing(path) : undefined;
  if (!ex) return;
  if (isDir && ex.type !== 'dir') {
    throw new UserError(`${instr} failed: cannot copy to non-directory: /${path}`, { hint: `/${path} is a ${ex.type} in the image; copy into another path, or remove it in an earlier step` });
  }
  if (!isDir && ex.type === 'dir') {
    throw new UserError(`${instr} failed: cannot replace to directory /${path} with file`, { hint: `/${path} is a directory in the image; copy the file into it with a trailing / on the destination` });
  }
}

async function hashContent(e: LayerEntry): Promise<string> {
  const h = createHash('sha256');
  const c = e.content;
  if (!c) return '';
  if ('buffer' in c) h.update(c.buffer);
  else if ('path' in c) {
    // Small files in one synchronous read: per-file async calls cost more than the bytes here.
    if ((e.size ?? Infinity) <= 1 << 20) h.update(readFileSync(c.path));
    else if ((e.size ?? Infinity) <= 4 << 20) h.update(await readFile(c.path));
    else for await (const b of createReadStream(c.path, { highWaterMark: 1 << 20 })) h.update(b as Buffer);
  }
  else for await (const b of c.stream()) h.update(b);
  return h.digest('hex');
}

function isSorted(entries: LayerEntry[]): boolean {
  for (let i = 1; i < entries.length; i++) if (comparePaths(entries[i - 1].path, entries[i].path) > 0) return false;
  return true;
}

/** One entry's line in a checksum: its metadata, then `content` (a digest, or a file identity). */
function entryLine(e: LayerEntry, content: string): string {
  return JSON.stringify([e.path, e.type, e.mode, e.uid, e.gid, e.linkTarget ?? '', e.devMajor ?? 0, e.devMinor ?? 0, content]) + '\n';
}

const fileSource = (e: LayerEntry) => (e.type === 'file' && e.content && 'path' in e.content ? e.content : undefined);

/**
 * The digest of a sorted list with each file's identity in place of its content, which stands for
 * the list's checksum while no file changed; undefined when a file has no identity to go by.
 */
function listDigest(list: LayerEntry[]): string | undefined {
  const h = sha256Hasher();
  for (const e of list) {
    const identity = fileSource(e)?.identity;
    if (e.type === 'file' && !identity) return undefined;
    h.update(entryLine(e, identity ?? ''));
  }
  return h.digest();
}

function* identities(list: LayerEntry[]): Generator<string> {
  for (const e of list) {
    const identity = fileSource(e)?.identity;
    if (identity) yield identity;
  }
}

/**
 * Content checksum of planned entries for cache keys: path, type, mode, owner, link target and
 * file content — never mtimes, so a fresh checkout of the same files hits the cache. With `hashes`,
 * a list seen before unchanged costs no file read and no per-file lookup, and a known file no read.
 */
export async function checksumEntries(entries: LayerEntry[], opts: { hashes?: ContextHashes } = {}): Promise<string> {
  // Planned entries come sorted: only entries that are not get sorted, in a copy.
  const list = isSorted(entries) ? entries : [...entries].sort((a, b) => comparePaths(a.path, b.path));
  const listed = opts.hashes ? listDigest(list) : undefined;
  const remembered = listed ? opts.hashes!.listChecksum(listed) : undefined;
  if (remembered) return remembered;
  const index = opts.hashes ? await opts.hashes.files() : undefined;
  const h = createHash('sha256');
  // Files the index knows need no read; the rest are read ahead as before.
  const known = list.map((e) => { const s = fileSource(e); return s && index ? index.lookup(s.path, s.identity) : undefined; });
  const prefetched = readAhead(list.filter((e, i) => e.type === 'file' && known[i] === undefined));
  let next = 0;
  let allKept = true;
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    let content = '';
    if (e.type === 'file') {
      content = known[i] ?? '';
      if (known[i] === undefined) {
        const early = prefetched(next++);
        const hash = async () => (early ? createHash('sha256').update(await early).digest('hex') : hashContent(e));
        const s = fileSource(e);
        if (s && index) {
          const got = await index.remember(s.path, hash, s.identity);
          content = got.digest;
          allKept &&= got.kept;
        } else content = await hash();
      }
    }
    h.update(entryLine(e, content));
  }
  const checksum = 'sha256:' + h.digest('hex');
  if (listed && allKept) opts.hashes!.rememberList(listed, checksum, newestChangeNs(identities(list)));
  return checksum;
}
