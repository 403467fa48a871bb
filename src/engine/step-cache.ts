// The step cache of one build: a step's layer by its key, from the local cache dir or a
// `--cache-from` registry, else made (once per build for equal keys) and recorded. Layers are
// cached as made, without SOURCE_DATE_EPOCH; a build with an epoch uses a variant re-timed from
// that one (cached too), so changing the epoch re-runs no step.
import type { CacheRecord } from '../cache/index.ts';
import { clampLayer, writeLayer } from '../fs/index.ts';
import { epochVariantKey, layerRecordKey } from './keys.ts';
import type { LayerRef, LayerStore } from './layers.ts';
import type { RemoteRecords } from './registry-cache.ts';
import type { MadeEntries, StepResult } from './state.ts';

export interface StepCacheOptions {
  noCache: boolean;
  dockerMediaTypes: boolean;
  sourceDateEpoch: number | undefined;
  /** `created` of what this build makes. */
  created: string;
}

function descriptorOf(d: { mediaType: string; digest: string; size: number }) {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

export class StepCache {
  private readonly layers: LayerStore;
  private readonly options: StepCacheOptions;
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Cached steps from `--cache-from` registries (set by build() before the stages run). */
  remoteRecords: RemoteRecords = new Map();
  /** Every step record this build used or made, for `--cache-to`. */
  readonly usedRecords = new Map<string, CacheRecord>();
  /** SOURCE_DATE_EPOCH variant key → the key of the layer it was re-timed from. */
  readonly variants = new Map<string, string>();

  constructor(layers: LayerStore, options: StepCacheOptions) {
    this.layers = layers;
    this.options = options;
  }

  /**
   * The layer of the step keyed `stepKey`: cached, else `make` runs and its entries are written.
   * `fresh` (its stage is in `--no-cache-filter`) skips the lookup; the result is still recorded.
   */
  async layer(stepKey: string, make: () => Promise<MadeEntries>, fresh = false): Promise<StepResult> {
    return this.retimed(await this.raw(layerRecordKey(stepKey, this.options.dockerMediaTypes), make, fresh), fresh);
  }

  /**
   * Runs `make` once for equal keys (e.g. a `--platform=$BUILDPLATFORM` stage serving every target);
   * `first` tells the caller whether it was the one that ran it.
   */
  private once<T>(key: string, make: () => Promise<T>): { value: Promise<T>; first: boolean } {
    const p = this.inflight.get(key) as Promise<T> | undefined;
    if (p) return { value: p, first: false };
    const value = make();
    this.inflight.set(key, value);
    return { value, first: true };
  }

  /**
   * The cached result of a step: from the local cache, else from a `--cache-from` registry. A
   * registry record's blob stays there (`repository`) until something needs its bytes: a push
   * mounts it, a file output or a RUN on top fetches it.
   */
  private async lookup(key: string, fresh: boolean): Promise<{ record: CacheRecord; repository?: string } | undefined> {
    if (this.options.noCache || fresh) return undefined;
    const local = await this.layers.cache.lookup(key);
    if (local) {
      this.usedRecords.set(key, local);
      return { record: local };
    }
    const remote = this.remoteRecords.get(key);
    if (!remote) return undefined;
    this.usedRecords.set(key, remote.record);
    return remote;
  }

  private async record(key: string, record: CacheRecord): Promise<void> {
    await this.layers.cache.record(key, record);
    this.usedRecords.set(key, record);
  }

  private get mediaTypes(): 'docker' | 'oci' {
    return this.options.dockerMediaTypes ? 'docker' : 'oci';
  }

  private async raw(key: string, make: () => Promise<MadeEntries>, fresh: boolean): Promise<StepResult> {
    const hit = await this.lookup(key, fresh);
    if (hit) {
      const { record, repository } = hit;
      return { key, cached: true, created: record.created, layer: record.layer ? { descriptor: descriptorOf(record.layer), diffID: record.layer.diffID, repository } : undefined };
    }
    const shared = this.once(key, async (): Promise<StepResult> => {
      const made = await make();
      try {
        const created = this.options.created;
        // A step that changed nothing still makes a layer (an empty tar), as BuildKit does.
        const written = await writeLayer(made.entries, { dir: this.layers.blobsDir, chunkIndexDir: this.layers.chunksDir, mediaTypes: this.mediaTypes });
        const layer: LayerRef = { descriptor: descriptorOf(written), diffID: written.diffID };
        await Promise.all([made.keep?.(written.diffID), written.index && this.layers.keepIndex(written.diffID, written.index)]);
        await this.record(key, { layer: { ...layer.descriptor, diffID: layer.diffID }, created });
        return { key, cached: false, layer, created };
      } finally {
        await made.cleanup?.();
      }
    });
    // Another platform already made this very step in this build: for this one it is a cache hit.
    return shared.first ? shared.value : { ...(await shared.value), cached: true };
  }

  /** With SOURCE_DATE_EPOCH: the step's layer with every mtime clamped to it (cached by key + epoch). */
  private async retimed(raw: StepResult, fresh: boolean): Promise<StepResult> {
    const epoch = this.options.sourceDateEpoch;
    if (epoch === undefined || !raw.layer) return raw;
    const variantKey = epochVariantKey(raw.key, epoch);
    const hit = await this.lookup(variantKey, fresh);
    if (hit?.record.layer) {
      this.variants.set(variantKey, raw.key);
      return { ...raw, layer: { descriptor: descriptorOf(hit.record.layer), diffID: hit.record.layer.diffID, repository: hit.repository } };
    }
    const source = raw.layer;
    const made = await this.once(variantKey, async () => {
      const written = await clampLayer(await this.layers.local(source), epoch, { dir: this.layers.blobsDir, chunkIndexDir: this.layers.chunksDir, mediaTypes: this.mediaTypes });
      await this.record(variantKey, { layer: { ...descriptorOf(written), diffID: written.diffID }, created: raw.created });
      return written;
    }).value;
    this.variants.set(variantKey, raw.key);
    return { ...raw, layer: { descriptor: descriptorOf(made), diffID: made.diffID } };
  }
}
