// Layers of a stage's filesystem and where their blobs are: in the local store, or still in the
// registry repository they came from (fetched only when something needs their bytes).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DigestMismatchError, type LocalCache } from '../cache/index.ts';
import { applyLayer, extractLayerOnce, flatLayerView, flattenView, indexLayer, isFlatView, isLayerIndex, layerView, type LayerIndex, type LayerView } from '../fs/index.ts';
import type { Descriptor } from '../oci/index.ts';
import { boundedAll } from '../limit.ts';
import { writeFileAtomic } from '../write-all.ts';
import type { RegistryPort } from './ports.ts';

export interface LayerRef {
  descriptor: Descriptor;
  diffID: string;
  /** The repository a base image's layer came from (for mounting on push and lazy fetching). */
  repository?: string;
}

/** Layers extracted at once for a RUN's overlay. */
const EXTRACTIONS_AT_ONCE = 3;

/** Blob access for a build: fetch-once into the local store, extract-once for overlay. */
export class LayerStore {
  readonly cache: LocalCache;
  private readonly registry: RegistryPort | undefined;
  private readonly fetching = new Map<string, Promise<string>>();
  /** Blobs this build wrote, by digest → the diffID it hashed as it wrote them. */
  private readonly written = new Map<string, string>();
  /** Views are immutable for a given stack of layers, so each is read once per build. */
  private readonly views = new Map<string, Promise<LayerView>>();
  /** Layers extracted as overlay lower dirs, by diffID, shared by builds. */
  readonly snapshotsDir: string;
  /** Indexes that an extraction under way will give (it reads the layer anyway), by diffID. */
  private readonly indexedOnExtraction = new Map<string, Promise<LayerIndex | undefined>>();

  constructor(cache: LocalCache, registry: RegistryPort | undefined) {
    this.cache = cache;
    this.registry = registry;
    this.snapshotsDir = join(cache.dir, 'snapshots');
  }

  get blobsDir(): string {
    return join(this.cache.dir, 'blobs');
  }

  /** Pointers to the compressed chunks of the blobs in blobsDir (fs/writer.ts chunkIndexDir). */
  get chunksDir(): string {
    return join(this.cache.dir, 'chunks');
  }

  /** Local path of the layer's blob, fetching it from its repository first when needed. */
  local(layer: LayerRef): Promise<string> {
    const digest = layer.descriptor.digest;
    let p = this.fetching.get(digest);
    if (!p) {
      p = (async () => {
        if ((await this.cache.store.size(digest)) === layer.descriptor.size) {
          await this.cache.store.touch(digest); // used: a size budget keeps it over older blobs
          return this.cache.store.path(digest);
        }
        if (!layer.repository || !this.registry) throw new Error(`layer ${digest} is neither in the cache nor in a known repository`);
        // A blob whose bytes do not match its digest (flipped on the way) is fetched again, a
        // bounded number of times; corrupt bytes never reach the store.
        for (let attempt = 1; ; attempt++) {
          try {
            await this.cache.store.put(await this.registry.fetchBlob(layer.repository, layer.descriptor), digest);
            return this.cache.store.path(digest);
          } catch (e) {
            if (attempt >= 3 || !isDigestMismatch(e)) throw e;
          }
        }
      })();
      this.fetching.set(digest, p);
      p.catch(() => this.fetching.delete(digest));
    }
    return p;
  }

  async allLocal(layers: LayerRef[]): Promise<string[]> {
    return Promise.all(layers.map((l) => this.local(l)));
  }

  /**
   * Overlay lower dirs for the layers, bottom first (each layer extracted once, shared by builds;
   * a few at once: each is a dir of its own, and their inflating runs on libuv's threads);
   * `signal` stops it before the next layer.
   * Overlay refuses a dir given twice: a layer repeated right after itself changes nothing and is
   * dropped; a layer repeated further up gives undefined (the caller extracts the stack instead).
   * `mountable`: whether overlay mounts here (undefined when not), asked after the layers are noted
   * as being extracted (see below).
   */
  async lowerDirs(layers: LayerRef[], signal?: AbortSignal, mountable: Promise<boolean> = Promise.resolve(true)): Promise<string[] | undefined> {
    const unique = layers.filter((l, i) => i === 0 || l.diffID !== layers[i - 1].diffID);
    if (new Set(unique.map((l) => l.diffID)).size !== unique.length) return undefined;
    // A view asked for meanwhile (a WORKDIR or COPY before the RUN these are for) takes its index
    // from the extraction's pass over the layer rather than decompressing it once more.
    const told = new Map<string, (index: LayerIndex | undefined) => void>();
    for (const { diffID } of unique) {
      if (this.indexedOnExtraction.has(diffID)) continue;
      this.indexedOnExtraction.set(diffID, new Promise((resolve) => told.set(diffID, resolve)));
    }
    try {
      // The blobs are fetched while the overlay check runs (without overlay, the layers are applied
      // instead), and each is extracted once it is here.
      const local = unique.map((l) => {
        const p = this.local(l);
        p.catch(() => undefined); // awaited below
        return p;
      });
      if (!(await mountable)) return undefined;
      return await boundedAll(EXTRACTIONS_AT_ONCE, unique.map(({ diffID, descriptor }, i) => async () => {
        const path = await local[i];
        signal?.throwIfAborted(); // between layers: one being extracted is finished, not left half-made
        const extracted: { index?: LayerIndex } = {};
        const dir = await extractLayerOnce(this.snapshotsDir, diffID, path, { verified: this.written.get(descriptor.digest) === diffID, extracted });
        told.get(diffID)?.(extracted.index);
        return dir;
      }));
    } finally {
      for (const resolve of told.values()) resolve(undefined); // the rest are read on their own
    }
  }

  /** Applies the layers into a fresh directory under `workRoot` (the fallback when overlay can't mount). */
  async materialize(layers: LayerRef[], workRoot: string): Promise<string> {
    await mkdir(workRoot, { recursive: true });
    const dir = await mkdtemp(join(workRoot, 'rootfs-'));
    try {
      await this.applyOnto(dir, layers);
    } catch (e) {
      await rm(dir, { recursive: true, force: true });
      throw e;
    }
    return dir;
  }

  /** Applies more layers onto a directory that holds the ones below them. */
  async applyOnto(dir: string, layers: LayerRef[]): Promise<void> {
    for (const path of await this.allLocal(layers)) await applyLayer(path, dir);
  }

  /** A layer's index (see fs layerView), by its diffID, so a layer pulled or made again finds it. */
  private async index(layer: LayerRef): Promise<LayerIndex> {
    try {
      const saved: unknown = JSON.parse(await readFile(this.indexFile(layer.diffID), 'utf8'));
      if (isLayerIndex(saved)) return saved;
    } catch { /* not made yet, or unreadable: made again */ }
    const made = (await this.indexedOnExtraction.get(layer.diffID)) ?? await indexLayer(await this.local(layer));
    await this.keepIndex(layer.diffID, made);
    return made;
  }

  /** A blob this build just wrote, with the diffID of its tar: extracting it verifies nothing again. */
  wrote(layer: { digest: string; diffID: string }): void {
    this.written.set(layer.digest, layer.diffID);
  }

  /** Keeps the index of a layer (one just written comes with it), so no view reads its tar. */
  async keepIndex(diffID: string, index: LayerIndex): Promise<void> {
    await writeFileAtomic(this.indexFile(diffID), JSON.stringify(index)).catch(() => undefined); // a cache dir that cannot be written costs speed only
  }

  private indexFile(diffID: string): string {
    return join(this.cache.dir, 'views', `${diffID.replace(':', '-')}.json`);
  }

  /**
   * Reads /etc/passwd, /etc/group and every path's metadata out of the layers, without extracting:
   * from each layer's index in the cache dir (`views/`), made from its tar the first time.
   */
  view(layers: LayerRef[]): Promise<LayerView> {
    const id = layers.map((l) => l.descriptor.digest).join(',');
    let v = this.views.get(id);
    if (!v) {
      v = this.chainView(layers);
      this.views.set(id, v);
      v.catch(() => this.views.delete(id));
    }
    return v;
  }

  /**
   * The view of two or more layers comes flat from `views/chain-*.json` when an earlier build made
   * it (by the layers' diffIDs: whatever their compression); else it is merged from their indexes
   * and kept there for the next build.
   */
  private async chainView(layers: LayerRef[]): Promise<LayerView> {
    const merged = async () => layerView(await Promise.all(layers.map((l) => this.index(l))));
    if (layers.length < 2) return merged();
    const file = join(this.cache.dir, 'views', `chain-${createHash('sha256').update(layers.map((l) => l.diffID).join(',')).digest('hex')}.json`);
    try {
      const saved: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (isFlatView(saved)) return flatLayerView(saved);
    } catch { /* not made yet, or unreadable: made again */ }
    const view = await merged();
    await writeFileAtomic(file, JSON.stringify(flattenView(view))).catch(() => undefined); // a cache dir that cannot be written costs speed only
    return view;
  }
}

/** A fetched blob's bytes did not hash to its digest: the store's DigestMismatchError, or the registry client's ContentMismatchError (its cause when wrapped). */
function isDigestMismatch(e: unknown): boolean {
  for (let c = e, depth = 0; c instanceof Error && depth < 4; c = c.cause, depth++) {
    if (c instanceof DigestMismatchError || c.name === 'ContentMismatchError') return true;
  }
  return false;
}
