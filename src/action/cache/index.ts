/**
 * action/cache: the layer cache dir persisted through the GitHub Actions cache service
 * (@actions/cache) — what to save within a size budget, restoring by scope prefix, merging a
 * restored entry into the cache dir with every blob verified — bounded by our own time budget so a
 * failing service costs a warning, never the build. GitHub-only: src/cache stays portable.
 */
export { restoreLayerCache, saveLayerCache, cacheKeyPrefix, endProcess, type CacheLog } from './service.ts';
