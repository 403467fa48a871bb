// The deterministic layer writer: entries sorted (parents first), numeric owners, clamped mtimes,
// PAX where ustar can't hold a field; tar → diffID hash → compression → digest hash → file, in one pass.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { UserError } from '../errors.ts';
import { MediaType } from '../oci/index.ts';
import { padding, END_OF_ARCHIVE, type TarType } from './tar.ts';
import { PACK_BLOCK, TarPacker } from './tar-pack.ts';
import type { FileIdentity } from './hash-index.ts';
import { compressStream, decompressStream, writeChunkPointers, type CompressedChunk, type CompressionOptions } from './compress.ts';
import { cleanLayerPath, comparePaths } from './paths.ts';
import { emptyLayerIndex, IDENTITY_FILES, type LayerIndex } from './layer-index.ts';
import { writeAll } from '../write-all.ts';
import { clampTarTimes } from './retime.ts';
import { BlobInWriting, type GrowingBlob } from './growing-blob.ts';

export type EntryType = TarType;

/**
 * Where an entry's bytes come from. A path may carry the file's identity as the walk saw it
 * (device, inode, size, mtime and ctime in ns: hash-index.ts), so the hash index needs no stat.
 */
export type ContentSource = { path: string; identity?: FileIdentity } | { buffer: Uint8Array } | { stream: () => AsyncIterable<Uint8Array> };

/** One entry of a layer: a path inside the image (no leading slash needed) and its metadata. */
export interface LayerEntry {
  path: string;
  type: EntryType;
  mode: number; // permission bits incl. setuid/setgid/sticky
  uid: number;
  gid: number;
  mtime: number; // seconds since the epoch
  /** symlink: its target, verbatim. hardlink: the path (inside the image) of the linked entry. */
  linkTarget?: string;
  /** files: their content; `size` must match it (checked). */
  content?: ContentSource;
  size?: number;
  xattrs?: Record<string, Uint8Array>;
  devMajor?: number;
  devMinor?: number;
}

export interface LayerOptions extends Partial<CompressionOptions> {
  /** Blob store directory; the blob lands at `<dir>/sha256/<hex>` (an OCI layout's `blobs/`). */
  dir: string;
  /** SOURCE_DATE_EPOCH: mtimes later than this are clamped to it. */
  sourceDateEpoch?: number;
  /** Media type flavour: 'oci' (default) or 'docker' (docker only has gzip). */
  mediaTypes?: 'oci' | 'docker';
  /**
   * Where pointers to compressed chunks of the blobs in `dir` are kept: chunks found there are
   * copied, not compressed again, and this layer's chunks are added. Does not change the bytes.
   */
  chunkIndexDir?: string;
  /** Told of the blob as its writing starts: it can be read while it grows (an upload that follows the writer). */
  growing?: (blob: GrowingBlob) => void;
}

export interface LayerResult {
  diffID: string; // sha256 of the uncompressed tar
  digest: string; // sha256 of the blob
  size: number; // blob bytes
  mediaType: string;
  path: string; // where the blob was written
}

/** Whiteout entry for `path` (the OCI spec's `.wh.<name>`), as a layer entry. */
export function whiteoutEntry(path: string, mtime = 0): LayerEntry {
  const p = cleanLayerPath(path);
  const i = p.lastIndexOf('/');
  return { path: (i === -1 ? '' : p.slice(0, i + 1)) + '.wh.' + p.slice(i + 1), type: 'file', mode: 0, uid: 0, gid: 0, mtime, content: { buffer: new Uint8Array(0) }, size: 0 };
}

/** Opaque-directory marker for `dir`. */
export function opaqueEntry(dir: string, mtime = 0): LayerEntry {
  const p = cleanLayerPath(dir);
  return { path: (p ? p + '/' : '') + '.wh..wh..opq', type: 'file', mode: 0, uid: 0, gid: 0, mtime, content: { buffer: new Uint8Array(0) }, size: 0 };
}

/**
 * Orders entries for the tar: parents before children (component-wise sort), missing parent
 * directories added (0755, root, mtime of the child clamped), and for each hardlink group the
 * entry that sorts first carries the content while the others link to it. An entry that needs no
 * change is passed on as it is, and a list that needs none (a planned COPY) is the result itself:
 * a COPY of 200,000 files is not copied, mapped or sorted again.
 */
export function normalizeEntries(input: Iterable<LayerEntry>, sourceDateEpoch?: number): LayerEntry[] {
  const list = Array.isArray(input) ? input as LayerEntry[] : [...input];
  if (alreadyNormal(list, sourceDateEpoch)) return list;
  const byPath = new Map<string, LayerEntry>();
  for (const e of list) {
    const path = cleanLayerPath(e.path);
    if (path === '') continue; // the root itself is never an entry
    const mtime = Math.max(0, Math.floor(sourceDateEpoch !== undefined ? Math.min(e.mtime, sourceDateEpoch) : e.mtime));
    const linkTarget = e.type === 'hardlink' ? cleanLayerPath(e.linkTarget ?? '') : e.linkTarget;
    byPath.set(path, path === e.path && mtime === e.mtime && linkTarget === e.linkTarget ? e : { ...e, path, mtime, linkTarget });
  }
  for (const path of byPath.keys()) { // the parents added meanwhile are visited too, and find theirs there
    for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
      const parent = path.slice(0, i);
      if (!byPath.has(parent)) byPath.set(parent, { path: parent, type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0 }); // the same with or without an epoch, so re-timing a cached layer gives the same bytes
    }
  }
  const sorted = [...byPath.values()].sort((a, b) => comparePaths(a.path, b.path));
  // Hardlink groups: resolve each link to its group's root entry, then let the first in order carry content.
  const rootOf = (p: string, seen = new Set<string>()): string => {
    const e = byPath.get(p);
    if (!e) return p;
    if (e.type !== 'hardlink') return p;
    if (seen.has(p)) throw new UserError(`hardlink loop at ${p} in layer entries`);
    seen.add(p);
    return rootOf(e.linkTarget!, seen);
  };
  const rootOfLink = new Map<string, string>();
  for (const e of sorted) {
    if (e.type !== 'hardlink') continue;
    const root = rootOf(e.path);
    const target = byPath.get(root);
    if (!target) throw new UserError(`hardlink ${e.path} points to ${e.linkTarget}, which is not in the layer`, { hint: 'a hardlink must point to a file in the same layer' });
    if (target.type === 'dir') throw new UserError(`hardlink ${e.path} points to a directory (${root})`);
    rootOfLink.set(e.path, root);
  }
  if (rootOfLink.size === 0) return sorted;
  // Only groups with links need a look: every other entry is its own group's first.
  const linkedRoots = new Set(rootOfLink.values());
  const groupOf = (e: LayerEntry): string | undefined => (e.type === 'hardlink' ? rootOfLink.get(e.path) : linkedRoots.has(e.path) ? e.path : undefined);
  const firstOfGroup = new Map<string, string>();
  for (const e of sorted) {
    const root = groupOf(e);
    if (root !== undefined && !firstOfGroup.has(root)) firstOfGroup.set(root, e.path);
  }
  return sorted.map((e) => {
    const root = groupOf(e);
    if (root === undefined) return e;
    const first = firstOfGroup.get(root)!;
    const rootEntry = byPath.get(root)!;
    if (e.path === first) return { ...rootEntry, path: e.path, linkTarget: rootEntry.linkTarget };
    return { ...rootEntry, path: e.path, type: 'hardlink' as const, linkTarget: first, content: undefined, size: 0 };
  });
}

/**
 * Whether normalizeEntries would give `entries` back unchanged: clean paths in order, no
 * duplicates, each parent present (as the entry right above it in the chain of entries that
 * contain it), whole mtimes in range, and no hardlinks.
 */
function alreadyNormal(entries: LayerEntry[], sourceDateEpoch: number | undefined): boolean {
  const chain: string[] = []; // the entries above the current one, outermost first
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const path = e.path;
    if (path === '' || e.type === 'hardlink' || cleanLayerPath(path) !== path) return false;
    if (!Number.isInteger(e.mtime) || e.mtime < 0 || (sourceDateEpoch !== undefined && e.mtime > sourceDateEpoch)) return false;
    if (i > 0 && comparePaths(entries[i - 1].path, path) >= 0) return false;
    while (chain.length > 0 && !isBelow(path, chain[chain.length - 1])) chain.pop();
    const parentLength = path.lastIndexOf('/');
    if (parentLength !== -1 && (chain.length === 0 || chain[chain.length - 1].length !== parentLength)) return false;
    chain.push(path);
  }
  return true;
}

const isBelow = (path: string, dir: string): boolean => path.length > dir.length && path.charCodeAt(dir.length) === 0x2f && path.startsWith(dir);

const SMALL_FILE = 4 << 20;
/** Files up to this size are read synchronously, whole into a pack block. */
const SYNC_FILE = PACK_BLOCK;

async function* contentOf(e: LayerEntry): AsyncGenerator<Buffer> {
  const c = e.content;
  if (!c) return;
  if ('buffer' in c) yield Buffer.from(c.buffer.buffer, c.buffer.byteOffset, c.buffer.byteLength);
  else if ('path' in c) {
    // Files up to 4 MiB in one read (a stream per file costs more than the bytes); large ones
    // streamed. Files up to 1 MiB never come here: tarStream reads them synchronously.
    if ((e.size ?? Infinity) <= SMALL_FILE) yield await readFile(c.path);
    else yield* createReadStream(c.path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>;
  }
  else for await (const b of c.stream()) yield Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function sizeOf(e: LayerEntry): number {
  if (e.size !== undefined) return e.size;
  if (e.content && 'buffer' in e.content) return e.content.buffer.byteLength;
  throw new Error(`layer entry ${e.path}: size is required for a file read from a path or stream`);
}

/**
 * Reads small files a little ahead of the tar writer (up to 64 files / 64 MiB), so disk latency
 * overlaps hashing and compression. Rejections surface when the entry's turn comes.
 */
export function readAhead<T extends { type: string; size?: number; content?: ContentSource }>(list: T[]): (i: number) => Promise<Buffer> | undefined {
  const ahead = new Map<number, Promise<Buffer>>();
  let bytes = 0;
  let next = 0;
  return (i) => {
    while (next < list.length && next <= i + 64 && bytes < 64 << 20) {
      const e = list[next];
      if (e.type === 'file' && e.content && 'path' in e.content && (e.size ?? Infinity) <= SMALL_FILE && (e.size ?? Infinity) > SYNC_FILE) {
        const p = readFile(e.content.path);
        p.catch(() => undefined);
        ahead.set(next, p);
        bytes += e.size ?? 0;
      }
      next++;
    }
    const p = ahead.get(i);
    if (p) { ahead.delete(i); bytes -= list[i].size ?? 0; }
    return p;
  };
}

const noXattrs: ReadonlyMap<string, Buffer> = new Map();

/**
 * The uncompressed tar bytes of already-normalized entries, small pieces packed into blocks
 * (tar-pack.ts). `reuseBlocks`: the consumer is done with each Buffer before it asks for the next,
 * so the packing block is written again (no new memory per MiB of small files). With `index`, also
 * fills it in as indexLayer would read it back from those bytes (no second pass over the tar).
 */
export async function* tarStream(entries: Iterable<LayerEntry>, opts: { reuseBlocks?: boolean; index?: LayerIndex } = {}): AsyncGenerator<Buffer> {
  const list = Array.isArray(entries) ? entries as LayerEntry[] : [...entries];
  const index = opts.index;
  const prefetched = readAhead(list);
  const out = new TarPacker({ reuse: opts.reuseBlocks });
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    const size = e.type === 'file' ? sizeOf(e) : 0;
    const xattrs = e.xattrs ? new Map(Object.entries(e.xattrs).map(([k, v]) => [k, Buffer.from(v)])) : noXattrs;
    const header = {
      name: e.path, type: e.type, mode: e.mode & 0o7777, uid: e.uid, gid: e.gid, size, mtime: e.mtime,
      linkname: e.type === 'symlink' || e.type === 'hardlink' ? (e.linkTarget ?? '') : '',
      devmajor: e.devMajor ?? 0, devminor: e.devMinor ?? 0, xattrs,
    };
    index?.entries.push([header.name, header.type, header.mode, header.uid, header.gid, header.mtime, header.size, header.linkname]);
    yield* out.header(header);
    if (e.type !== 'file') continue;
    // The identity files' bytes go into the index too: copied, since blocks are written again.
    const keep: Buffer[] | undefined = index && IDENTITY_FILES.includes(e.path) ? [] : undefined;
    const early = prefetched(i);
    const c = e.content;
    let written = 0;
    if (!early && !keep && c && 'path' in c && size <= SYNC_FILE) {
      // Up to 1 MiB synchronously (the promise API's open/fstat/read/close hops cost more than the
      // read), straight into the block: no Buffer per file.
      yield* out.room(size);
      written = out.readFile(c.path, size);
    } else {
      for await (const chunk of early ? (async function* () { yield await early; })() : contentOf(e)) {
        written += chunk.length;
        if (written > size) break;
        keep?.push(Buffer.from(chunk));
        yield* out.add(chunk);
      }
    }
    if (keep) index!.files[header.name] = Buffer.concat(keep).toString('base64');
    if (written !== size) throw new UserError(`${e.path} changed while it was being written to a layer (expected ${size} bytes, read ${written})`, { hint: 'make sure nothing writes to the build context during the build' });
    const pad = padding(size);
    if (pad) yield* out.zeros(pad);
  }
  yield* out.add(END_OF_ARCHIVE);
  yield* out.flush();
}

export function layerMediaType(c: CompressionOptions['compression'], flavour: 'oci' | 'docker' = 'oci'): string {
  if (flavour === 'docker') {
    if (c === 'zstd') throw new UserError('zstd layers have no Docker media type', { hint: 'drop --docker-media-types / oci-mediatypes=false, or use compression=gzip' });
    return c === 'gzip' ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
  }
  return c === 'gzip' ? MediaType.ociLayerGzip : c === 'zstd' ? MediaType.ociLayerZstd : MediaType.ociLayer;
}

/** Layers of more entries get no index as they are written: 200,000 headers held (and their JSON) cost more memory than a later read of the tar. */
const MAX_INDEXED_ENTRIES = 50_000;

/** Writes a layer blob from entries in one streaming pass and returns its identity and (most layers) its index (fs/view.ts). */
export async function writeLayer(entries: Iterable<LayerEntry>, opts: LayerOptions): Promise<LayerResult & { index?: LayerIndex }> {
  // The compressor copies each piece as it comes; without compression the pieces are kept a while.
  const reuseBlocks = (opts.compression ?? 'gzip') !== 'none';
  const list = normalizeEntries(entries, opts.sourceDateEpoch);
  const index = list.length <= MAX_INDEXED_ENTRIES ? emptyLayerIndex() : undefined;
  const written = await writeTarBlob(tarStream(list, { reuseBlocks, index }), opts);
  return { ...written, index };
}

/**
 * Re-writes a layer blob with every mtime clamped to `sourceDateEpoch`, without the files: the tar
 * headers are patched as the stream passes. Gives the bytes `writeLayer` gives with that epoch, so
 * a layer cached without an epoch serves builds with any epoch.
 */
export async function clampLayer(blobPath: string, sourceDateEpoch: number, opts: Omit<LayerOptions, 'sourceDateEpoch'>): Promise<LayerResult> {
  return writeTarBlob(clampTarTimes(tarOfBlob(blobPath), sourceDateEpoch), opts);
}

/**
 * Writes a layer blob again in another compression (or level): decompressed as it is read and
 * compressed as writeLayer compresses, so the blob is byte for byte the one writeLayer would have
 * made of the same tar; the diffID stays.
 */
export async function recompressLayer(blobPath: string, opts: Omit<LayerOptions, 'sourceDateEpoch'>): Promise<LayerResult> {
  return writeTarBlob(tarOfBlob(blobPath), opts);
}

/** A layer blob's tar bytes, decompressed as they are read. */
function tarOfBlob(blobPath: string): AsyncIterable<Buffer> {
  return decompressStream(createReadStream(blobPath, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
}

/** Compresses a tar stream into the blob store in one pass: the diffID, digest and size. */
async function writeTarBlob(tarChunks: AsyncIterable<Buffer>, opts: Omit<LayerOptions, 'sourceDateEpoch'>): Promise<LayerResult> {
  const compression = opts.compression ?? 'gzip';
  const mediaType = layerMediaType(compression, opts.mediaTypes);
  const diffHash = createHash('sha256');
  // Uncompressed, the blob is the tar: one hash names both.
  const blobHash = compression === 'none' ? undefined : createHash('sha256');
  const tar = (async function* () {
    for await (const b of tarChunks) { diffHash.update(b); yield b; }
  })();
  const dir = join(opts.dir, 'sha256');
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
  const fh = await open(tmp, 'w');
  const growing = opts.growing ? new BlobInWriting(tmp) : undefined;
  if (growing) opts.growing!(growing);
  let size = 0;
  const chunks: Array<CompressedChunk & { offset: number }> = [];
  // One write in flight while the next piece is made (the pieces are never written again once
  // yielded): a 9 MB layer waited ~1 ms per MiB for its writes with nothing else to do.
  let writing: Promise<void> = Promise.resolve();
  try {
    // Coalesce small pieces into ~1 MiB writes; a large one is written as it is.
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      if (!pendingBytes) return;
      const b = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
      pending = []; pendingBytes = 0;
      await writing;
      writing = writeAll(fh, b, tmp);
      if (growing) writing = writing.then(() => growing.wrote(b.length));
      writing.catch(() => undefined); // awaited at the next flush or below
    };
    const reuse = opts.chunkIndexDir === undefined ? undefined : { pointersDir: opts.chunkIndexDir, blobsDir: opts.dir, onChunk: (c: CompressedChunk) => chunks.push({ ...c, offset: size }) };
    for await (const b of compressStream(tar, { compression, level: opts.level, chunkSize: opts.chunkSize, workers: opts.workers, reuse })) {
      blobHash?.update(b);
      size += b.length;
      pending.push(b); pendingBytes += b.length;
      if (pendingBytes >= 1 << 20) await flush();
    }
    await flush();
    await writing;
    await fh.close();
  } catch (e) {
    await writing.catch(() => undefined);
    await fh.close().catch(() => undefined);
    growing?.failed(e);
    await rm(tmp, { force: true });
    throw e;
  }
  const diffHex = diffHash.digest('hex');
  const hex = blobHash ? blobHash.digest('hex') : diffHex;
  const path = join(dir, hex);
  growing?.renamed();
  try {
    await rename(tmp, path);
    if (opts.chunkIndexDir !== undefined && chunks.length > 0) await writeChunkPointers(opts.chunkIndexDir, hex, chunks);
  } catch (e) {
    growing?.failed(e);
    throw e;
  }
  const result = { diffID: 'sha256:' + diffHex, digest: 'sha256:' + hex, size, mediaType, path };
  growing?.finished(result);
  return result;
}
