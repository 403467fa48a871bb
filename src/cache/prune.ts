// What a cache dir holds and how to shrink it: every unit that can go on its own (a blob, an
// extracted layer under `snapshots/` or a layer index under `views/`, a `RUN --mount=type=cache` dir under `mounts/`, a temp left by
// a killed build) with its disk usage and last use; pruning by age (`until`) and by a size budget
// (`keepBytes`, least recently used first), then dropping step records and chunk pointers whose layer went.
import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseChunkPointer } from '../fs/index.ts';
import { CacheIndex } from './keys.ts';
import { isNotFound, readdirOrEmpty } from './store.ts';

export type UnitKind = 'blob' | 'snapshot' | 'mount' | 'temp';

export interface CacheUnit {
  kind: UnitKind;
  /** Paths removed together (a snapshot is its dir and its `.done` marker). */
  paths: string[];
  /** The blob's digest, for blobs. */
  digest?: string;
  /** Bytes on disk (allocated blocks, each inode once). */
  bytes: number;
  /** Milliseconds since the epoch of the last write or use (mtime). */
  lastUsed: number;
}

export interface DiskUsage {
  units: Record<UnitKind, { count: number; bytes: number }>;
  /** Step records (keys/), counted apart: tiny, and they go with their layer. */
  keys: number;
  totalBytes: number;
}

export interface CachePruneOptions {
  /** Keep at most this many bytes: least recently used units go first. */
  keepBytes?: number;
  /** Only units last used more than this long ago may go (buildx's `until`). */
  olderThanMs?: number;
  /** Units used this recently stay whatever the budget (a neighbour build may be using them). */
  protectMs?: number;
  now?: number;
}

export interface CachePruneResult {
  removed: number;
  freedBytes: number;
  keptBytes: number;
  droppedKeys: number;
}

/** Every prunable unit of the cache dir `dir`. */
export async function cacheUnits(dir: string): Promise<CacheUnit[]> {
  const out: CacheUnit[] = [];
  const seen = new Set<string>();
  for (const alg of await readdirOrEmpty(join(dir, 'blobs'))) {
    for (const hex of await readdirOrEmpty(join(dir, 'blobs', alg))) {
      const u = await unit('blob', [join(dir, 'blobs', alg, hex)], seen);
      if (u) out.push({ ...u, digest: `${alg}:${hex}` });
    }
  }
  const snaps = join(dir, 'snapshots');
  for (const name of await readdirOrEmpty(snaps)) {
    if (name.endsWith('.done')) continue;
    const paths = name.startsWith('.extract-') ? [join(snaps, name)] : [join(snaps, name + '.done'), join(snaps, name)];
    const u = await unit(name.startsWith('.extract-') ? 'temp' : 'snapshot', paths, seen);
    if (u) out.push(u);
  }
  // Layer indexes (engine/layers.ts): derived from their layers, made again when gone.
  for (const name of await readdirOrEmpty(join(dir, 'views'))) {
    const u = await unit('snapshot', [join(dir, 'views', name)], seen);
    if (u) out.push(u);
  }
  for (const name of await readdirOrEmpty(join(dir, 'mounts'))) {
    const u = await unit('mount', [join(dir, 'mounts', name)], seen);
    if (u) out.push(u);
  }
  for (const name of await readdirOrEmpty(join(dir, 'tmp'))) {
    const u = await unit('temp', [join(dir, 'tmp', name)], seen);
    if (u) out.push(u);
  }
  return out;
}

export async function diskUsage(dir: string): Promise<DiskUsage> {
  const units: DiskUsage['units'] = { blob: { count: 0, bytes: 0 }, snapshot: { count: 0, bytes: 0 }, mount: { count: 0, bytes: 0 }, temp: { count: 0, bytes: 0 } };
  let totalBytes = 0;
  for (const u of await cacheUnits(dir)) {
    units[u.kind].count++;
    units[u.kind].bytes += u.bytes;
    totalBytes += u.bytes;
  }
  return { units, keys: (await new CacheIndex(dir).keys()).length, totalBytes };
}

/**
 * Removes units: all of them (no options), those older than `olderThanMs`, and/or the least
 * recently used until at most `keepBytes` remain. Temps of a live build are younger than an hour
 * and stay; so does anything used within `protectMs`.
 */
export async function pruneCache(dir: string, o: CachePruneOptions = {}): Promise<CachePruneResult> {
  const now = o.now ?? Date.now();
  const units = await cacheUnits(dir);
  let total = units.reduce((n, u) => n + u.bytes, 0);
  const eligible = units
    .filter((u) => now - u.lastUsed >= Math.max(o.olderThanMs ?? 0, o.protectMs ?? 0, u.kind === 'temp' ? 3600_000 : 0))
    .sort((a, b) => a.lastUsed - b.lastUsed);
  const gone = new Set<string>();
  let freedBytes = 0;
  let removed = 0;
  for (const u of eligible) {
    if (o.keepBytes !== undefined && total <= o.keepBytes) break;
    for (const p of u.paths) await (u.kind === 'snapshot' ? removeWhole(p) : rm(p, { recursive: true, force: true }));
    if (u.digest) gone.add(u.digest);
    removed++;
    freedBytes += u.bytes;
    total -= u.bytes;
  }
  const index = new CacheIndex(dir);
  let droppedKeys = 0;
  if (gone.size > 0) await dropChunkPointers(dir, gone);
  if (gone.size > 0) {
    for (const key of await index.keys()) {
      const rec = await index.get(key);
      if (rec?.layer && gone.has(rec.layer.digest)) {
        await index.delete(key);
        droppedKeys++;
      }
    }
  }
  return { removed, freedBytes, keptBytes: total, droppedKeys };
}

/** Chunk pointers (fs parseChunkPointer) into blobs that went, and unreadable ones. */
async function dropChunkPointers(dir: string, gone: Set<string>): Promise<void> {
  const chunks = join(dir, 'chunks');
  for (const name of await readdirOrEmpty(chunks)) {
    const pointer = parseChunkPointer(await readFile(join(chunks, name), 'latin1').catch(() => ''));
    if (!pointer || gone.has(`sha256:${pointer.blob}`)) await rm(join(chunks, name), { force: true });
  }
}

/**
 * Removes `path` so that nobody sees part of it: renamed aside first (a temp name in its own dir,
 * which a prune cut short leaves behind as a temp), then deleted. A layer dir in `snapshots/` is
 * then either whole or absent, which is what lets builds on the same cache dir trust one another's
 * (fs/snapshot/store.ts).
 */
async function removeWhole(path: string): Promise<void> {
  const aside = join(dirname(path), `.extract-gone-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await rename(path, aside);
  } catch (e) {
    if (isNotFound(e)) return;
    throw e;
  }
  await rm(aside, { recursive: true, force: true });
}

async function unit(kind: UnitKind, paths: string[], seen: Set<string>): Promise<Omit<CacheUnit, 'digest'> | undefined> {
  let bytes = 0;
  let lastUsed = 0;
  let found = false;
  for (const p of paths) {
    const r = await usage(p, seen, true);
    if (!r) continue;
    found = true;
    bytes += r.bytes;
    lastUsed = Math.max(lastUsed, r.mtime);
  }
  return found ? { kind, paths, bytes, lastUsed } : undefined;
}

/** Allocated bytes under `path` (each inode once); the mtime of `path` itself. */
async function usage(path: string, seen: Set<string>, top: boolean): Promise<{ bytes: number; mtime: number } | undefined> {
  let s;
  try {
    s = await lstat(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  const id = `${s.dev}:${s.ino}`;
  let bytes = seen.has(id) ? 0 : s.blocks * 512;
  seen.add(id);
  if (s.isDirectory()) {
    for (const name of await readdir(path).catch(() => [] as string[])) bytes += (await usage(join(path, name), seen, false))?.bytes ?? 0;
  }
  return { bytes, mtime: top ? s.mtimeMs : 0 };
}
