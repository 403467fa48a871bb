// The extracted-layer store: each layer extracted once into `<store>/<hex of diffID>` (an overlay
// lower dir), shared by later builds and by other processes on the same cache dir. A layer goes
// in only under its true diffID, and a finished dir is never replaced (it may be in use).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { UserError } from '../../errors.ts';
import { applyLayer, type LayerSource } from '../apply.ts';
import { emptyLayerIndex, type LayerIndex } from '../layer-index.ts';

/** Extractions under way in this process, by target dir: concurrent callers share one. */
const extracting = new Map<string, Promise<string>>();

/** What extractLayerOnce's caller gets besides the dir: the layer's index, when this call read the layer. */
export interface Extracted { index?: LayerIndex }

/**
 * Extracts a layer once into `<store>/<hex of diffID>` as an overlay lower dir; returns its path.
 * Safe for concurrent callers, in this process and in others sharing the store: a dir there is never
 * replaced (it may be some overlay's lower dir; see placeInStore). `verified`: the caller made the
 * blob from that very tar (its diffID is not a claim to check). `extracted.index` is set when this
 * call read the layer (and its diffID held): indexLayer's index, from the same pass.
 */
export function extractLayerOnce(store: string, diffID: string, source: LayerSource, opts: { verified?: boolean; extracted?: Extracted } = {}): Promise<string> {
  const { dir } = storePaths(store, diffID);
  let p = extracting.get(dir);
  if (!p) {
    p = extractInto(store, diffID, source, opts.verified ?? false, opts.extracted).finally(() => extracting.delete(dir));
    extracting.set(dir, p);
  }
  return p;
}

/**
 * The store is shared by every later build, so a layer goes in only when its uncompressed bytes
 * are the diffID it is filed under (an image config or a cache record could claim any diffID):
 * they are hashed as they are extracted, into a temporary dir that goes into the store only if
 * they match. A one-shot stream was checked by the caller as it was read.
 */
async function extractInto(store: string, diffID: string, source: LayerSource, verified: boolean, extracted: Extracted | undefined): Promise<string> {
  const { dir, marker } = storePaths(store, diffID);
  if (await isStored(store, diffID)) {
    // Used now: a size-budget prune of the cache dir keeps recently used layers (and in-use ones).
    const now = new Date();
    await utimes(marker, now, now).catch(() => undefined);
    return dir;
  }
  const hash = !verified && (typeof source === 'string' || source instanceof Uint8Array) ? createHash('sha256') : undefined;
  const index = extracted && emptyLayerIndex();
  await mkdir(store, { recursive: true });
  const tmp = await mkdtemp(posix.join(store, '.extract-'));
  try {
    await applyLayer(source, tmp, { whiteouts: 'overlay', privileged: true, index, ...(hash ? { tarBytes: (b: Uint8Array) => hash.update(b) } : {}) });
    const got = hash && 'sha256:' + hash.digest('hex');
    if (got !== undefined && got !== diffID) throw new UserError(`layer content does not match its diffID ${diffID} (it is ${got})`, { hint: 'the image config or the cache record is wrong or was tampered with; the layer was not used' });
    if (extracted) extracted.index = index;
    if (!(await placeInStore(store, diffID, tmp))) await rm(tmp, { recursive: true, force: true });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return dir;
}


function storePaths(store: string, diffID: string): { dir: string; marker: string } {
  const hex = diffID.replace(/^sha256:/, '');
  return { dir: posix.join(store, hex), marker: posix.join(store, hex + '.done') };
}

async function isStored(store: string, diffID: string): Promise<boolean> {
  return Boolean(await stat(storePaths(store, diffID).marker).catch(() => null));
}

/**
 * Moves `from` into the store as the layer `diffID` unless it is there already. A layer dir only
 * ever arrives whole, by rename, and leaves whole (cache prune renames it aside before deleting), so
 * a dir that is there is complete even before its marker is: another build just placed it and is
 * about to write the marker — never to be removed and replaced (that build may be about to mount
 * it). False when someone else's copy won: the caller removes `from`.
 */
async function placeInStore(store: string, diffID: string, from: string): Promise<boolean> {
  const { dir, marker } = storePaths(store, diffID);
  if (await isStored(store, diffID)) return false;
  await mkdir(store, { recursive: true });
  let placed = true;
  try {
    await rename(from, dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    placed = false;
  }
  await writeFile(marker, '');
  return placed;
}

/**
 * Keeps `dir` (a RUN's overlay upper dir or a COPY's files, which are the layer as extracted) as
 * the layer `diffID`; false when it was not moved (the store has that layer, or is getting it).
 */
export async function adoptIntoStore(store: string, diffID: string, dir: string): Promise<boolean> {
  // Someone else is extracting this layer: theirs may already be in use.
  if (extracting.has(storePaths(store, diffID).dir)) return false;
  return placeInStore(store, diffID, dir);
}
