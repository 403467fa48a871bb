/**
 * cache: the local content store (blobs by digest) and the index of step cache keys → results, in
 * one plain directory (`blobs/`, `keys/`, `tmp/`) that GitLab's `cache:` or a laptop keeps as-is;
 * its disk usage and pruning by age and size budget, least recently used first (prune.ts).
 * Safe for two processes at once: every file appears by rename, complete or not at all.
 * Portable: imports only ../oci; GitHub's cache service lives in action/cache.
 */
import { CacheIndex, type CacheRecord } from './keys.ts';
import { ContentStore, type PruneOptions, type PruneResult } from './store.ts';

export { ContentStore, DigestMismatchError, type PruneOptions, type PruneResult } from './store.ts';
export { cacheKey, CacheIndex, type CacheRecord } from './keys.ts';
export { cacheUnits, diskUsage, pruneCache, type CacheUnit, type CachePruneOptions, type CachePruneResult, type DiskUsage, type UnitKind } from './prune.ts';

/** A cache directory: its blob store and its key index together. */
export class LocalCache {
  readonly dir: string;
  readonly store: ContentStore;
  readonly index: CacheIndex;

  constructor(dir: string) {
    this.dir = dir;
    this.store = new ContentStore(dir);
    this.index = new CacheIndex(dir);
  }

  /**
   * The record for `key` when it can be used: its layer blob must be present (and, with `verify`,
   * intact). A record whose blob is gone or corrupt is a miss and is dropped.
   */
  async lookup(key: string, options: { verify?: boolean } = {}): Promise<CacheRecord | undefined> {
    const rec = await this.index.get(key);
    if (!rec) return undefined;
    if (rec.layer) {
      const ok = options.verify ? await this.store.verify(rec.layer.digest) : (await this.store.size(rec.layer.digest)) === rec.layer.size;
      if (!ok) {
        await this.index.delete(key);
        return undefined;
      }
      await this.store.touch(rec.layer.digest);
    }
    return rec;
  }

  /** Records a step's result; its layer blob must already be in the store. */
  async record(key: string, rec: CacheRecord): Promise<void> {
    if (rec.layer && (await this.store.size(rec.layer.digest)) !== rec.layer.size) {
      throw new Error(`cache record for ${key}: layer ${rec.layer.digest} is not in the store (put it first)`);
    }
    await this.index.set(key, rec);
  }

  /** Prunes blobs (see ContentStore.prune), then drops key records whose layer went with them. */
  async prune(options: PruneOptions): Promise<PruneResult & { droppedKeys: number }> {
    const result = await this.store.prune(options);
    const gone = new Set(result.removed);
    let droppedKeys = 0;
    for (const key of await this.index.keys()) {
      const rec = await this.index.get(key);
      if (rec === undefined) droppedKeys++;
      else if (rec.layer && gone.has(rec.layer.digest)) {
        await this.index.delete(key);
        droppedKeys++;
      }
    }
    return { ...result, droppedKeys };
  }
}
