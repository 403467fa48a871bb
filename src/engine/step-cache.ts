// The step cache of one build: a step's layer by its key, from the local cache dir or a
// `--cache-from` registry, else made (once per build for equal keys) and recorded. Layers are
// cached as made, without SOURCE_DATE_EPOCH; a build with an epoch uses a variant re-timed from
// that one (cached too), so changing the epoch re-runs no step. Likewise a record's layer keeps
// the compression it was made in: a build that wants another gets a compression variant (by diffID,
// compression and level; cached), so changing the compression re-runs no step either.
import type { CacheRecord } from '../cache/index.ts';
import { clampLayer, defaultLevel, recompressLayer, writeLayer, type Compression, type GrowingBlob, type LayerResult } from '../fs/index.ts';
import { layerCompression } from '../oci/index.ts';
import { compressedVariantKey, epochVariantKey, layerRecordKey } from './keys.ts';
import type { LayerRef, LayerStore } from './layers.ts';
import type { RemoteRecords } from './registry-cache.ts';
import type { MadeEntries, StepResult } from './state.ts';

export interface StepCacheOptions {
  noCache: boolean;
  dockerMediaTypes: boolean;
  sourceDateEpoch: number | undefined;
  /** `created` of what this build makes. */
  created: string;
  /** What every layer the images hold is compressed as (level resolved; 0 for 'none'). */
  compression: WriteCompression;
  /** Called as a step starts its work (a cache miss), before `make`; `runFollows`: a RUN step will run after it. */
  beforeMake?: (runFollows: boolean) => void;
}

/**
 * How a step uses the cache (see StepCache.layer). `onMiss`: called as the step starts its work,
 * before `make` (after `beforeMake`).
 */
export interface LayerOptions {
  fresh?: boolean; exported?: boolean; runFollows?: boolean; onMiss?: () => void; made?: (made: MadeEntries, key: string) => void;
  /** Told of a new layer's blob as it is written, where that blob is the one the image holds (no epoch variant follows). */
  growing?: (blob: GrowingBlob) => void;
}

/** A layer compression as the writer takes it (the request's LayerCompression, its level resolved). */
export type WriteCompression = { type: Compression; level: number; force?: boolean };

/** How layers no image holds are written: they never leave the cache dir. */
const uncompressed: WriteCompression = { type: 'none', level: 0 };

function descriptorOf(d: { mediaType: string; digest: string; size: number }) {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

/** A recorded or written layer as the stages hold it (`repository`: where a `--cache-from` record's blob still is). */
function refOf(l: { mediaType: string; digest: string; size: number; diffID: string }, repository?: string): LayerRef {
  return { descriptor: descriptorOf(l), diffID: l.diffID, ...(repository !== undefined ? { repository } : {}) };
}

/** A step's result and the record that holds its layer (for the variants map), with the level of its blob. */
interface Held { result: StepResult; recordKey: string; level?: number }

export class StepCache {
  private readonly layers: LayerStore;
  private readonly options: StepCacheOptions;
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** Cached steps from `--cache-from` registries (set by build() before the stages run). */
  remoteRecords: RemoteRecords = new Map();
  /** Every step record this build used or made, for `--cache-to`. */
  readonly usedRecords = new Map<string, CacheRecord>();
  /** Variant key (SOURCE_DATE_EPOCH, compression) → the key of the record it was made from. */
  readonly variants = new Map<string, string>();
  /** Layers this build compressed again from a blob of another compression (none on a rebuild that has them). */
  recompressed = 0;

  constructor(layers: LayerStore, options: StepCacheOptions) {
    this.layers = layers;
    this.options = options;
  }

  /**
   * The layer of the step keyed `stepKey`: cached, else `make` runs and its entries are written.
   * `fresh` (its stage is in `--no-cache-filter`) skips the lookup; the result is still recorded.
   * `exported: false` (no image holds the layer): a new layer is written uncompressed, a cached one
   * is taken in whatever compression it has. `made` is told what `make` made, and the result's
   * key, before its layer is written (a RUN's next step may start on it then).
   */
  async layer(stepKey: string, make: () => Promise<MadeEntries>, { fresh = false, exported = true, runFollows = true, onMiss, made, growing }: LayerOptions = {}): Promise<StepResult> {
    const write = exported ? this.options.compression : uncompressed;
    // With an epoch the image holds the re-timed variant, not the blob written first.
    const follow = exported && this.options.sourceDateEpoch === undefined ? growing : undefined;
    const raw = await this.raw(layerRecordKey(stepKey, this.options.dockerMediaTypes), make, { fresh, write, runFollows, onMiss, made, growing: follow });
    const held = await this.retimed(raw, fresh, write);
    return exported ? this.inCompression(held, fresh) : held.result;
  }

  /**
   * With force-compression, base image layers in another compression than the build's, converted
   * (once: the variant is recorded by diffID). As BuildKit's getRemote, only the compression type
   * decides (util/compression's NeedsConversion): a gzip base layer stays under gzip at level 9.
   */
  async forced(layers: LayerRef[]): Promise<LayerRef[]> {
    const want = this.options.compression;
    if (!want.force) return layers;
    return Promise.all(layers.map(async (l) => {
      const c = layerCompression(l.descriptor.mediaType);
      if (c === undefined || c === want.type) return l;
      return this.variant(compressedVariantKey(l.diffID, want.type, want.level), l, false);
    }));
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

  /** Records a layer just written, with the level it was compressed at (when not its compression's default). */
  private async record(key: string, written: LayerResult, created: string | undefined, c: WriteCompression = this.options.compression): Promise<void> {
    const level = c.type !== 'none' && c.level !== defaultLevel(c.type) ? { level: c.level } : {};
    this.layers.wrote(written);
    const record: CacheRecord = { layer: { ...descriptorOf(written), diffID: written.diffID }, ...(created !== undefined ? { created } : {}), ...level };
    await this.layers.cache.record(key, record);
    this.usedRecords.set(key, record);
  }

  /** Where and how this build writes layers: the flavour, and the compression and level (the build's unless told). */
  private writeOptions(c: WriteCompression = this.options.compression) {
    return { dir: this.layers.blobsDir, chunkIndexDir: this.layers.chunksDir, mediaTypes: this.options.dockerMediaTypes ? 'docker' as const : 'oci' as const, compression: c.type, level: c.level };
  }

  private async raw(key: string, make: () => Promise<MadeEntries>, { fresh, write, runFollows, onMiss, made: told, growing }: { fresh: boolean; write: WriteCompression; runFollows: boolean; onMiss?: () => void; made?: LayerOptions['made']; growing?: LayerOptions['growing'] }): Promise<Held> {
    const hit = await this.lookup(key, fresh);
    if (hit) {
      const { record, repository } = hit;
      const result: StepResult = { key, cached: true, created: record.created, layer: record.layer ? refOf(record.layer, repository) : undefined };
      return { result, recordKey: key, level: record.level };
    }
    const shared = this.once(key, async (): Promise<Held> => {
      this.options.beforeMake?.(runFollows);
      onMiss?.();
      const made = await make();
      told?.(made, key);
      try {
        await made.writeAfter;
        const created = this.options.created;
        // A step that changed nothing still makes a layer (an empty tar), as BuildKit does. It is
        // written in the build's compression at once: no variant to make afterwards.
        const written = await writeLayer(made.entries, { ...this.writeOptions(write), growing });
        const layer = refOf(written);
        await Promise.all([made.keep?.(written.diffID), written.index && this.layers.keepIndex(written.diffID, written.index)]);
        await this.record(key, written, created, write);
        return { result: { key, cached: false, layer, created }, recordKey: key, level: write.level };
      } finally {
        await made.cleanup?.();
      }
    });
    // Another platform already made this very step in this build: for this one it is a cache hit.
    if (shared.first) return shared.value;
    const held = await shared.value;
    return { ...held, result: { ...held.result, cached: true } };
  }

  /**
   * With SOURCE_DATE_EPOCH: the step's layer with every mtime clamped to it (cached by key + epoch),
   * written in the build's compression whatever the source's is.
   */
  private async retimed(raw: Held, fresh: boolean, write: WriteCompression): Promise<Held> {
    const epoch = this.options.sourceDateEpoch;
    const source = raw.result.layer;
    if (epoch === undefined || !source) return raw;
    const variantKey = epochVariantKey(raw.result.key, epoch);
    const hit = await this.lookup(variantKey, fresh);
    this.variants.set(variantKey, raw.result.key);
    if (hit?.record.layer) {
      const layer = refOf(hit.record.layer, hit.repository);
      return { result: { ...raw.result, layer }, recordKey: variantKey, level: hit.record.level };
    }
    const made = await this.once(variantKey, async () => {
      const written = await clampLayer(await this.layers.local(source), epoch, this.writeOptions(write));
      await this.record(variantKey, written, raw.result.created, write);
      return written;
    }).value;
    return { result: { ...raw.result, layer: refOf(made) }, recordKey: variantKey, level: write.level };
  }

  /** The held layer in the build's compression and level: as it is, or its compression variant. */
  private async inCompression(held: Held, fresh: boolean): Promise<StepResult> {
    const layer = held.result.layer;
    const want = this.options.compression;
    if (!layer) return held.result;
    const c = layerCompression(layer.descriptor.mediaType);
    if (c === want.type && (c === 'none' || (held.level ?? defaultLevel(c)) === want.level)) return held.result;
    const key = compressedVariantKey(layer.diffID, want.type, want.level);
    this.variants.set(key, held.recordKey);
    return { ...held.result, layer: await this.variant(key, layer, fresh) };
  }

  /** The compression variant recorded under `key`, else made from `source`'s blob and recorded. */
  private async variant(key: string, source: LayerRef, fresh: boolean): Promise<LayerRef> {
    const hit = await this.lookup(key, fresh);
    if (hit?.record.layer) return refOf(hit.record.layer, hit.repository);
    const made = await this.once(key, async () => {
      const written = await recompressLayer(await this.layers.local(source), this.writeOptions());
      if (written.diffID !== source.diffID) throw new Error(`layer ${source.descriptor.digest} decompresses to ${written.diffID}, not its diffID ${source.diffID}`);
      this.recompressed++;
      await this.record(key, written, undefined);
      return written;
    }).value;
    // A variant's blob is a new one: it is never mounted from the source's repository.
    return refOf(made);
  }
}
