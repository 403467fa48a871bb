// The layer cache persisted through the GitHub Actions cache service with @actions/cache. The cache
// is an accelerator, never a hazard: every call is bounded by our own time budget, never throws,
// and reports at most one warning; the caller carries on without the cache.
//
// Entries (immutable keys, restore by prefix, ≤ ~200 new entries/min and 10 GB per repository):
//   slipway-v1-layers-<scope slug>-<scope hash>-<content hash>  blobs/ + keys/ of the cache dir
//   slipway-v1-mounts-<scope slug>-<scope hash>-<content hash>  mounts/<id>/ + a per-file manifest
// so a run adds at most two entries, and none when the content equals what it restored. Restore
// takes the newest entry under the scope's prefix. @actions/cache reads its settings from
// process.env itself (ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2,
// GITHUB_SERVER_URL, RUNNER_TEMP, GITHUB_WORKSPACE); this module never does.
//
// Ending the process: when a budget runs out, the toolkit's request or a download timer may still be
// pending (actions/toolkit#2470 leaves a 10-minute timer after a failed download) and would keep
// Node alive. The action entry must finish with `endProcess()` instead of waiting for the event loop.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as toolkit from '@actions/cache';
import { mergeLayers, mergeMounts, selectForSave, stageLayers, stageMounts, type MergeResult } from './content.ts';

export interface CacheLog {
  info(message: string): void;
  warning(message: string): void;
  notice(message: string): void;
}

export interface RestoreLayerCacheOptions {
  /** The local cache dir to fill (`blobs/`, `keys/`, `mounts/`); created when missing. */
  dir: string;
  /** What the cache is for, e.g. target + platforms; entries of other scopes are never used. */
  scope: string;
  /** Wall-clock limit for the whole restore, in milliseconds. */
  budgetMs: number;
  log: CacheLog;
}

export interface SaveLayerCacheOptions extends RestoreLayerCacheOptions {
  /** Most bytes one save may hold (layers and mounts together); least recently used go first. */
  sizeBudgetBytes: number;
}

export type CacheOutcome = 'hit' | 'miss' | 'saved' | 'unchanged' | 'unavailable' | 'failed' | 'timeout';

export interface RestoreLayerCacheResult {
  outcome: Extract<CacheOutcome, 'hit' | 'miss' | 'unavailable' | 'failed' | 'timeout'>;
  layersKey?: string;
  mountsKey?: string;
  /** Files moved into the cache dir, and restored files dropped because they failed verification. */
  blobs: number;
  keys: number;
  mounts: number;
  corrupt: number;
  ms: number;
}

export interface SaveLayerCacheResult {
  outcome: Extract<CacheOutcome, 'saved' | 'unchanged' | 'unavailable' | 'failed' | 'timeout'>;
  /** Keys of the entries this save created. */
  saved: string[];
  bytes: number;
  /** Blobs and mount dirs left out to stay within the size budget. */
  dropped: number;
  ms: number;
}

const keyVersion = 'slipway-v1';
const stateFile = 'restored.json';

/** The key prefix of one scope's entries of one kind (`layers` or `mounts`). */
export function cacheKeyPrefix(kind: 'layers' | 'mounts', scope: string): string {
  const slug = scope.toLowerCase().replace(/[^a-z0-9.]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 48) || 'default';
  const hash = createHash('sha256').update(scope).digest('hex').slice(0, 12);
  return `${keyVersion}-${kind}-${slug}-${hash}-`;
}

/** Fills `dir` from the newest layers and mounts entries of `scope`. Never throws. */
export async function restoreLayerCache(opts: RestoreLayerCacheOptions): Promise<RestoreLayerCacheResult> {
  const started = performance.now();
  const result: RestoreLayerCacheResult = { outcome: 'miss', blobs: 0, keys: 0, mounts: 0, corrupt: 0, ms: 0 };
  const done = (r: Partial<RestoreLayerCacheResult>): RestoreLayerCacheResult => Object.assign(result, r, { ms: Math.round(performance.now() - started) });
  if (!featureAvailable()) {
    opts.log.notice('Layer cache: the GitHub Actions cache service is not available on this runner; building without it.');
    return done({ outcome: 'unavailable' });
  }
  const dir = resolve(opts.dir);
  const stages = stagePaths(dir);
  const run = async (signal: AbortSignal): Promise<void> => {
    await rm(stages.root, { recursive: true, force: true });
    await mkdir(stages.root, { recursive: true });
    const layersPrefix = cacheKeyPrefix('layers', opts.scope);
    const mountsPrefix = cacheKeyPrefix('mounts', opts.scope);
    const [layersKey, mountsKey] = await Promise.all([
      toolkit.restoreCache([stages.layers], layersPrefix, [layersPrefix]),
      toolkit.restoreCache([stages.mounts], mountsPrefix, [mountsPrefix]),
    ]);
    signal.throwIfAborted();
    const state: Record<string, string> = {};
    const add = (m: MergeResult): void => {
      result.blobs += m.blobs;
      result.keys += m.keys;
      result.mounts += m.mounts;
      result.corrupt += m.corrupt;
    };
    if (layersKey) {
      const m = await mergeLayers(stages.layers, dir, signal);
      add(m);
      result.layersKey = layersKey;
      if (m.corrupt === 0) state.layers = m.hash;
    }
    if (mountsKey) {
      const m = await mergeMounts(stages.mounts, dir, signal);
      add(m);
      result.mountsKey = mountsKey;
      if (m.corrupt === 0) state.mounts = m.hash;
    }
    await rm(stages.layers, { recursive: true, force: true });
    await rm(stages.mounts, { recursive: true, force: true });
    await writeFile(join(stages.root, stateFile), JSON.stringify(state));
    result.outcome = layersKey || mountsKey ? 'hit' : 'miss';
  };
  const r = await withinBudget(opts.budgetMs, run);
  if (r.ok) {
    const what = result.outcome === 'hit'
      ? `restored ${result.blobs} blobs, ${result.keys} step records, ${result.mounts} cache mounts from ${[result.layersKey, result.mountsKey].filter(Boolean).join(', ')}`
      : 'no entry for this scope yet';
    opts.log.info(`Layer cache: ${what} (${Math.round(performance.now() - started)} ms).`);
    if (result.corrupt > 0) {
      opts.log.warning(`Layer cache: ${result.corrupt} restored files failed verification and were dropped (treated as a miss).`);
    }
    return done({});
  }
  opts.log.warning(`Layer cache: restore ${r.reason}; building without the cache.`);
  return done({ outcome: r.timedOut ? 'timeout' : 'failed' });
}

/**
 * Saves `dir` as new entries of `scope`, pruned to `sizeBudgetBytes`; an entry whose content equals
 * what was restored (or what the service already holds) is not saved again. Never throws.
 */
export async function saveLayerCache(opts: SaveLayerCacheOptions): Promise<SaveLayerCacheResult> {
  const started = performance.now();
  const result: SaveLayerCacheResult = { outcome: 'unchanged', saved: [], bytes: 0, dropped: 0, ms: 0 };
  const done = (r: Partial<SaveLayerCacheResult>): SaveLayerCacheResult => Object.assign(result, r, { ms: Math.round(performance.now() - started) });
  if (!featureAvailable()) {
    opts.log.notice('Layer cache: the GitHub Actions cache service is not available on this runner; the cache is not saved.');
    return done({ outcome: 'unavailable' });
  }
  const dir = resolve(opts.dir);
  const stages = stagePaths(dir);
  const notes: string[] = [];
  const run = async (signal: AbortSignal): Promise<void> => {
    const sel = await selectForSave(dir, opts.sizeBudgetBytes, signal);
    result.bytes = sel.bytes;
    result.dropped = sel.droppedBlobs + sel.droppedMounts;
    const restored = await readState(stages.root);
    const kinds = [
      { kind: 'layers' as const, hash: sel.layersHash, stage: stages.layers, empty: sel.blobs.length + sel.keys.length === 0, fill: stageLayers },
      { kind: 'mounts' as const, hash: sel.mountsHash, stage: stages.mounts, empty: sel.mounts.length === 0, fill: stageMounts },
    ];
    for (const k of kinds) {
      signal.throwIfAborted();
      if (k.empty || restored[k.kind] === k.hash) continue;
      const key = cacheKeyPrefix(k.kind, opts.scope) + k.hash.slice(0, 32);
      // Keys are immutable: when this exact content is already stored (another job, an earlier
      // run), skip the tar and upload instead of letting the service refuse it.
      if (await toolkit.restoreCache([k.stage], key, [], { lookupOnly: true }) === key) continue;
      signal.throwIfAborted();
      await k.fill(dir, sel, k.stage, signal);
      const id = await toolkit.saveCache([k.stage], key);
      await rm(k.stage, { recursive: true, force: true });
      // -1 without a toolkit warning: the reservation was refused because another job is saving
      // this very key (immutable keys), or the run's cache mode is read-only. Both are fine.
      if (id !== -1) result.saved.push(key);
    }
    if (sel.droppedBlobs + sel.droppedMounts > 0) {
      notes.push(`left out ${sel.droppedBlobs} least recently used blobs and ${sel.droppedMounts} cache mounts to stay within ${opts.sizeBudgetBytes} bytes`);
    }
    result.outcome = result.saved.length > 0 ? 'saved' : 'unchanged';
  };
  const r = await withinBudget(opts.budgetMs, run);
  if (r.ok) {
    const what = result.saved.length > 0 ? `saved ${result.saved.join(', ')} (${result.bytes} bytes)` : 'unchanged since restore, nothing saved';
    opts.log.info(`Layer cache: ${[what, ...notes].join('; ')} (${Math.round(performance.now() - started)} ms).`);
    return done({});
  }
  opts.log.warning(`Layer cache: save ${r.reason}; the build result is unaffected.`);
  return done({ outcome: r.timedOut ? 'timeout' : 'failed' });
}

/**
 * Ends the process now with `exitCode` (default: process.exitCode, else 0). Call it as the last step
 * of an action entry that used this module: a budget that ran out leaves the toolkit's requests and
 * timers behind (actions/toolkit#2470: up to 10 minutes), which would otherwise hold the job open.
 * stdout and stderr are synchronous for files and pipes on Linux, so nothing written is lost.
 */
export function endProcess(exitCode?: number): never {
  process.exit(exitCode ?? (typeof process.exitCode === 'number' ? process.exitCode : 0));
}

function featureAvailable(): boolean {
  try {
    return toolkit.isFeatureAvailable();
  } catch {
    return false;
  }
}

function stagePaths(dir: string): { root: string; layers: string; mounts: string } {
  // Fixed paths: @actions/cache derives the entry version from the path strings, so save and
  // restore must name the same ones. Kept out of blobs/ and keys/ so the store never sees them.
  const root = join(dir, '.actions-cache');
  return { root, layers: join(root, 'layers'), mounts: join(root, 'mounts') };
}

async function readState(root: string): Promise<Record<string, string>> {
  try {
    const state = JSON.parse(await readFile(join(root, stateFile), 'utf8')) as unknown;
    return state && typeof state === 'object' ? state as Record<string, string> : {};
  } catch {
    return {};
  }
}

type BudgetResult = { ok: true } | { ok: false; timedOut: boolean; reason: string };

/**
 * Runs `work` for at most `budgetMs`, with the toolkit's own warnings and errors folded into ours:
 * while it runs, `::warning::`/`::error::` lines @actions/cache prints become `::debug::` lines, and
 * the first of them becomes the reason in our single warning. Our own work stops at the next
 * checkpoint once the signal aborts; the toolkit's requests can't be cancelled (see endProcess).
 */
async function withinBudget(budgetMs: number, work: (signal: AbortSignal) => Promise<void>): Promise<BudgetResult> {
  const controller = new AbortController();
  const captured: string[] = [];
  const restoreStdout = demoteToolkitAnnotations(captured);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((ok) => {
    timer = setTimeout(() => ok('timeout'), Math.max(0, budgetMs));
  });
  let outcome: 'done' | 'timeout' | Error;
  try {
    outcome = await Promise.race([work(controller.signal).then(() => 'done' as const), timeout]);
  } catch (err) {
    outcome = err instanceof Error ? err : new Error(String(err));
  } finally {
    clearTimeout(timer);
    restoreStdout();
  }
  if (outcome === 'done') return captured.length > 0 ? { ok: false, timedOut: false, reason: `failed: ${captured[0]}` } : { ok: true };
  controller.abort();
  if (outcome === 'timeout') {
    if (!lateFilterInstalled) lateFilterInstalled = installLateFilter();
    return { ok: false, timedOut: true, reason: `took longer than its ${budgetMs} ms budget` + (captured.length ? ` (${captured[0]})` : '') };
  }
  return { ok: false, timedOut: false, reason: `failed: ${captured[0] ?? outcome.message}` };
}

const annotation = /^::(warning|error)(?: [^:]*)?::(.*)$/gm;

/** While installed, annotation lines on stdout are recorded and rewritten as debug lines. */
function demoteToolkitAnnotations(captured: string[]): () => void {
  const original = process.stdout.write;
  const patched = function (this: typeof process.stdout, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string' && chunk.includes('::')) {
      chunk = chunk.replace(annotation, (_line, _kind: string, text: string) => {
        captured.push(unescapeCommand(text));
        return `::debug::${text}`;
      });
    }
    return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  };
  process.stdout.write = patched as typeof process.stdout.write;
  return () => {
    if (process.stdout.write === patched) process.stdout.write = original;
  };
}

let lateFilterInstalled = false;
/** After a budget ran out, the toolkit's retries may still end in its own warning; keep those quiet. */
const lateToolkitMessage = /^::(warning|error)(?: [^:]*)?::((?:Failed to (?:restore|save)|Cache reservation failed|uploadCacheArchiveSDK|Failed to (?:CreateCacheEntry|FinalizeCacheEntryUpload|GetCacheEntryDownloadURL)).*)$/gm;
function installLateFilter(): boolean {
  const original = process.stdout.write;
  process.stdout.write = function (this: typeof process.stdout, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string' && chunk.includes('::')) chunk = chunk.replace(lateToolkitMessage, '::debug::$2');
    return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof process.stdout.write;
  return true;
}

function unescapeCommand(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}
