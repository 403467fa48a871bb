// What goes into an Actions cache entry and how it comes back: the blobs and key records of a cache
// dir (pruned to a size budget, least recently used first) and its `mounts/<id>` dirs, staged as
// hard links in a directory @actions/cache can tar, and on restore verified file by file before
// anything moves into the cache dir. Plain file system work; no network, no process.env.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest } from '../../oci/index.ts';

const keyFileName = /^[a-f0-9]{64}\.json$/;
const blobDigest = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const mountManifest = 'manifest.json';

export interface BlobFile { digest: string; size: number; lastUsed: number }
export interface KeyFile { name: string; size: number; sha256: string; refs: string[] }
export interface MountFile { path: string; kind: 'file' | 'dir' | 'symlink'; mode: number; size: number; sha256?: string; target?: string }
export interface MountDir { id: string; size: number; lastUsed: number; files: MountFile[] }

/** The saved selection: what fits the budget, and a hash per entry that names its content. */
export interface Selection {
  blobs: BlobFile[];
  keys: KeyFile[];
  mounts: MountDir[];
  layersHash: string;
  mountsHash: string;
  bytes: number;
  droppedBlobs: number;
  droppedMounts: number;
}

/**
 * Reads the cache dir and picks what to save: blobs and mount dirs, most recently used first, while
 * the total stays within `budgetBytes`; key records only when every digest they mention was kept
 * (a record never points at a blob the entry lacks).
 */
export async function selectForSave(dir: string, budgetBytes: number, signal?: AbortSignal): Promise<Selection> {
  const blobs = await listBlobs(dir);
  const mounts: MountDir[] = [];
  for (const id of await readdirOrEmpty(join(dir, 'mounts'))) {
    signal?.throwIfAborted();
    const m = await scanMount(join(dir, 'mounts', id), id, signal);
    if (m) mounts.push(m);
  }
  type Unit = { lastUsed: number; size: number; blob?: BlobFile; mount?: MountDir };
  const units: Unit[] = [
    ...blobs.map((b) => ({ lastUsed: b.lastUsed, size: b.size, blob: b })),
    ...mounts.map((m) => ({ lastUsed: m.lastUsed, size: m.size, mount: m })),
  ].sort((a, b) => b.lastUsed - a.lastUsed);
  const keptBlobs: BlobFile[] = [];
  const keptMounts: MountDir[] = [];
  let bytes = 0;
  for (const u of units) {
    if (bytes + u.size > budgetBytes) continue; // a smaller, older unit may still fit
    bytes += u.size;
    if (u.blob) keptBlobs.push(u.blob);
    if (u.mount) keptMounts.push(u.mount);
  }
  const have = new Set(keptBlobs.map((b) => b.digest));
  const keys: KeyFile[] = [];
  for (const k of await listKeys(dir)) {
    if (k.refs.every((d) => have.has(d)) && bytes + k.size <= budgetBytes) {
      keys.push(k);
      bytes += k.size;
    }
  }
  keptBlobs.sort((a, b) => cmp(a.digest, b.digest));
  keptMounts.sort((a, b) => cmp(a.id, b.id));
  return {
    blobs: keptBlobs, keys, mounts: keptMounts, bytes,
    layersHash: layersHash(keptBlobs, keys),
    mountsHash: mountsHash(keptMounts),
    droppedBlobs: blobs.length - keptBlobs.length,
    droppedMounts: mounts.length - keptMounts.length,
  };
}

function layersHash(blobs: BlobFile[], keys: KeyFile[]): string {
  const h = createHash('sha256').update('slipway layers v1\n');
  for (const b of blobs) h.update(`blob ${b.digest} ${b.size}\n`);
  for (const k of keys) h.update(`key ${k.name} ${k.sha256}\n`);
  return h.digest('hex');
}

function mountsHash(mounts: MountDir[]): string {
  const h = createHash('sha256').update('slipway mounts v1\n');
  for (const m of mounts) {
    for (const f of m.files) h.update(`${m.id}/${f.path} ${f.kind} ${f.mode.toString(8)} ${f.size} ${f.sha256 ?? f.target ?? ''}\n`);
  }
  return h.digest('hex');
}

/** Hard-links the selected layer content into `stage` (a fresh dir); copies where links can't cross. */
export async function stageLayers(dir: string, sel: Selection, stage: string, signal?: AbortSignal): Promise<void> {
  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, 'keys'), { recursive: true });
  for (const b of sel.blobs) {
    signal?.throwIfAborted();
    const [alg, hex] = b.digest.split(':');
    await mkdir(join(stage, 'blobs', alg), { recursive: true });
    await linkOrCopy(join(dir, 'blobs', alg, hex), join(stage, 'blobs', alg, hex));
  }
  for (const k of sel.keys) await linkOrCopy(join(dir, 'keys', k.name), join(stage, 'keys', k.name));
}

/** Stages the selected mount dirs plus a manifest (per-file sha256) that restore checks against. */
export async function stageMounts(dir: string, sel: Selection, stage: string, signal?: AbortSignal): Promise<void> {
  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, 'mounts'), { recursive: true });
  for (const m of sel.mounts) {
    const root = join(stage, 'mounts', m.id);
    await mkdir(root);
    for (const f of m.files) {
      signal?.throwIfAborted();
      const src = join(dir, 'mounts', m.id, f.path);
      const dst = join(root, f.path);
      if (f.kind === 'dir') await mkdir(dst, { mode: f.mode });
      else if (f.kind === 'symlink') await symlink(f.target ?? '', dst);
      else await linkOrCopy(src, dst);
    }
  }
  await writeFile(join(stage, mountManifest), JSON.stringify({ mounts: sel.mounts.map(({ id, files }) => ({ id, files })) }));
}

export interface MergeResult { blobs: number; keys: number; mounts: number; corrupt: number; hash: string }

/**
 * Checks restored layer content in `stage` and moves what is sound into `dir`: every blob is
 * re-hashed against its name (a mismatch is deleted and counted as corrupt), every key record must
 * parse and have its blobs. Blobs move before keys, each by rename, so a reader never sees a record
 * before its blob. Files the cache dir already has are kept as they are.
 */
export async function mergeLayers(stage: string, dir: string, signal?: AbortSignal): Promise<MergeResult> {
  let corrupt = 0;
  const good: BlobFile[] = [];
  for (const b of await listBlobs(stage)) {
    signal?.throwIfAborted();
    const file = blobPath(stage, b.digest);
    if (await hashFile(file, b.digest.slice(0, b.digest.indexOf(':'))) === b.digest.slice(b.digest.indexOf(':') + 1)) good.push(b);
    else {
      corrupt++;
      await rm(file, { force: true });
    }
  }
  const have = new Set(good.map((b) => b.digest));
  const keys: KeyFile[] = [];
  for (const k of await listKeys(stage)) {
    const inDir = await Promise.all(k.refs.filter((d) => !have.has(d)).map((d) => exists(blobPath(dir, d))));
    if (inDir.every(Boolean)) keys.push(k);
    else corrupt++;
  }
  let movedBlobs = 0;
  let movedKeys = 0;
  for (const b of good) {
    signal?.throwIfAborted();
    const dest = blobPath(dir, b.digest);
    if (await exists(dest)) continue;
    await mkdir(join(dest, '..'), { recursive: true });
    await rename(blobPath(stage, b.digest), dest);
    movedBlobs++;
  }
  await mkdir(join(dir, 'keys'), { recursive: true });
  for (const k of keys) {
    signal?.throwIfAborted();
    const dest = join(dir, 'keys', k.name);
    if (await exists(dest)) continue;
    await rename(join(stage, 'keys', k.name), dest);
    movedKeys++;
  }
  good.sort((a, b) => cmp(a.digest, b.digest));
  keys.sort((a, b) => cmp(a.name, b.name));
  return { blobs: movedBlobs, keys: movedKeys, mounts: 0, corrupt, hash: layersHash(good, keys) };
}

/**
 * Checks restored mount dirs against the manifest saved with them and moves each sound one into
 * `dir/mounts/<id>` (one rename per mount); a mount with any mismatch is dropped whole. A mount the
 * cache dir already has stays as it is.
 */
export async function mergeMounts(stage: string, dir: string, signal?: AbortSignal): Promise<MergeResult> {
  let manifest: { mounts: { id: string; files: MountFile[] }[] };
  try {
    manifest = JSON.parse(await readFile(join(stage, mountManifest), 'utf8')) as typeof manifest;
    if (!Array.isArray(manifest.mounts)) throw new Error('no mounts list');
  } catch {
    return { blobs: 0, keys: 0, mounts: 0, corrupt: 1, hash: mountsHash([]) };
  }
  let corrupt = 0;
  let moved = 0;
  const good: MountDir[] = [];
  for (const m of manifest.mounts) {
    signal?.throwIfAborted();
    if (!isSafeName(m.id) || !Array.isArray(m.files)) { corrupt++; continue; }
    const root = join(stage, 'mounts', m.id);
    const actual = await scanMount(root, m.id, signal);
    if (!actual || !sameFiles(actual.files, m.files)) {
      corrupt++;
      continue;
    }
    good.push(actual);
    const dest = join(dir, 'mounts', m.id);
    if (await exists(dest)) continue;
    await mkdir(join(dir, 'mounts'), { recursive: true });
    await rename(root, dest);
    moved++;
  }
  good.sort((a, b) => cmp(a.id, b.id));
  return { blobs: 0, keys: 0, mounts: moved, corrupt, hash: mountsHash(good) };
}

function sameFiles(a: MountFile[], b: MountFile[]): boolean {
  const line = (f: MountFile): string => `${f.path}\0${f.kind}\0${f.size}\0${f.sha256 ?? ''}\0${f.target ?? ''}`;
  const sa = a.map(line).sort();
  const sb = b.map(line).sort();
  return sa.length === sb.length && sa.every((x, i) => x === sb[i]);
}

async function listBlobs(root: string): Promise<BlobFile[]> {
  const out: BlobFile[] = [];
  for (const alg of await readdirOrEmpty(join(root, 'blobs'))) {
    for (const hex of await readdirOrEmpty(join(root, 'blobs', alg))) {
      const digest = `${alg}:${hex}`;
      if (!isDigest(digest)) continue;
      const s = await lstat(join(root, 'blobs', alg, hex)).catch(() => undefined);
      if (s?.isFile()) out.push({ digest, size: s.size, lastUsed: s.mtimeMs });
    }
  }
  return out;
}

async function listKeys(root: string): Promise<KeyFile[]> {
  const out: KeyFile[] = [];
  for (const name of await readdirOrEmpty(join(root, 'keys'))) {
    if (!keyFileName.test(name)) continue;
    const file = join(root, 'keys', name);
    const s = await lstat(file).catch(() => undefined);
    if (!s?.isFile()) continue;
    const text = await readFile(file);
    let record: { layer?: { digest?: unknown } } | null;
    try {
      record = JSON.parse(text.toString('utf8')) as typeof record;
    } catch {
      await rm(file, { force: true }); // a record that doesn't parse is worthless anywhere
      continue;
    }
    // Only the layer blob is in the store; the record's diffID (digest of the uncompressed tar) never is.
    const layer = record?.layer?.digest;
    const refs = typeof layer === 'string' && blobDigest.test(layer) ? [layer] : [];
    out.push({ name, size: s.size, sha256: createHash('sha256').update(text).digest('hex'), refs });
  }
  return out.sort((a, b) => cmp(a.name, b.name));
}

/** Every entry under a mount dir, hashed; last use is the newest mtime in it. */
async function scanMount(root: string, id: string, signal?: AbortSignal): Promise<MountDir | undefined> {
  if (!isSafeName(id)) return undefined;
  const top = await lstat(root).catch(() => undefined);
  if (!top?.isDirectory()) return undefined;
  const files: MountFile[] = [];
  let size = 0;
  let lastUsed = top.mtimeMs;
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      signal?.throwIfAborted();
      const path = rel ? `${rel}/${name}` : name;
      const s = await lstat(join(root, path));
      lastUsed = Math.max(lastUsed, s.mtimeMs);
      const mode = s.mode & 0o7777;
      if (s.isDirectory()) {
        files.push({ path, kind: 'dir', mode, size: 0 });
        await walk(path);
      } else if (s.isSymbolicLink()) {
        files.push({ path, kind: 'symlink', mode, size: 0, target: await readlink(join(root, path)) });
      } else if (s.isFile()) {
        files.push({ path, kind: 'file', mode, size: s.size, sha256: await hashFile(join(root, path), 'sha256') });
        size += s.size;
      } // sockets, fifos and devices are not cache content
    }
  };
  await walk('');
  return { id, size, lastUsed, files };
}

function blobPath(root: string, digest: string): string {
  const [alg, hex] = digest.split(':');
  return join(root, 'blobs', alg, hex);
}

async function hashFile(file: string, algorithm: string): Promise<string> {
  const h = createHash(algorithm);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function linkOrCopy(src: string, dst: string): Promise<void> {
  try {
    await link(src, dst);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err;
    await copyFile(src, dst);
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  }
}

function isSafeName(s: unknown): s is string {
  return typeof s === 'string' && /^[A-Za-z0-9._-]{1,200}$/.test(s) && s !== '.' && s !== '..';
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
