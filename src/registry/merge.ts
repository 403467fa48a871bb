// One index from the jobs of a matrix, with no extra merge job. Each job pushes its platform
// manifests by digest, then records each platform as a tag in the target repository
// (`slipway-merge-<id>-<os>-<arch>[-<variant>]`, pointing at that platform's manifest), and only
// then looks for the other platforms' records. Every job writes its own record before it reads
// the others', so the last one to finish sees them all; jobs that finish at the same moment both
// see them all and write the same bytes, because the index is a pure function of the set of
// (platform, manifest) pairs: sorted by platform, no timestamps, no annotations. Once the index is
// under every tag, the records are removed where the registry allows deletion (see untag.ts); a
// record being removed reads as a placeholder, which counts as missing, never as a platform.
import { UserError } from '../errors.ts';
import { MediaType, formatPlatform, imageIndex, normalizePlatform, type Platform } from '../oci/index.ts';
import { isPlaceholder } from './untag.ts';

/** What the merge needs from a registry (the engine's RegistryPort has this shape). */
export interface MergeStore {
  /** A manifest by reference; undefined when there is none. */
  getManifest(ref: string): Promise<{ bytes: Uint8Array; mediaType: string; digest: string } | undefined>;
  putManifest(ref: string, bytes: Uint8Array, mediaType: string): Promise<string>;
  /** Removes a tag; false where the registry allows no deletion. Absent: records stay. */
  deleteTag?(ref: string): Promise<boolean>;
}

export interface MergeSpec {
  /** Ties the jobs of one pipeline run together (e.g. GITHUB_RUN_ID-GITHUB_RUN_ATTEMPT). */
  id: string;
  /** Every platform the whole set of jobs builds. */
  platforms: Platform[];
}

export interface PlatformManifest {
  platform: Platform;
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

export interface MergeOutcome {
  /** The index written under every tag, when this job saw every platform. */
  index?: { bytes: Buffer; digest: string; mediaType: string };
  /** Platforms whose record is not there yet (empty when the index was written). */
  missing: Platform[];
  /** Record tags removed after the index was written (none where the registry keeps them). */
  removed?: string[];
}

const idPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}$/;

/** Checks a merge spec from user input; one clear error naming what is wrong. */
export function checkMergeSpec(spec: MergeSpec): MergeSpec {
  if (!idPattern.test(spec.id)) {
    throw new UserError(`invalid merge id "${spec.id}": expected 1 to 80 letters, digits, '_', '.' or '-' (it becomes part of a tag)`, { hint: 'e.g. --merge-id "$GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT"' });
  }
  if (spec.platforms.length === 0) throw new UserError('--merge-platforms names no platform', { hint: 'e.g. --merge-platforms linux/amd64,linux/arm64' });
  const seen = new Set<string>();
  const platforms = spec.platforms.map(normalizePlatform).filter((p) => (seen.has(formatPlatform(p)) ? false : (seen.add(formatPlatform(p)), true)));
  return { id: spec.id, platforms };
}

/** The tag that records `platform`'s manifest for merge `id`. */
export function mergeRecordTag(id: string, platform: Platform): string {
  const p = normalizePlatform(platform);
  return ['slipway-merge', id, p.os, p.architecture, ...(p.variant ? [p.variant] : [])].join('-');
}

const key = (p: Platform) => formatPlatform(normalizePlatform(p));

/** The merged index: platform manifests sorted by platform; Docker's list when every one is Docker's. */
export function mergedIndex(manifests: PlatformManifest[]): { bytes: Buffer; digest: string; mediaType: string } {
  const sorted = [...manifests].sort((a, b) => (key(a.platform) < key(b.platform) ? -1 : key(a.platform) > key(b.platform) ? 1 : 0));
  const docker = sorted.every((m) => m.mediaType === MediaType.dockerManifest);
  return imageIndex(sorted.map((m) => ({ ...m, platform: normalizePlatform(m.platform) })), docker);
}

/**
 * Records this job's platform manifests in `repository` (already pushed by digest), then writes
 * the merged index under every tag when every platform of `spec` is recorded.
 */
export async function recordAndMerge(store: MergeStore, repository: string, spec: MergeSpec, mine: PlatformManifest[], tags: string[]): Promise<MergeOutcome> {
  const wanted = new Set(spec.platforms.map(key));
  for (const m of mine) {
    if (!wanted.has(key(m.platform))) {
      throw new UserError(`this job built ${key(m.platform)}, which --merge-platforms (${[...wanted].join(',')}) does not name`, { hint: 'list every platform of the matrix in --merge-platforms' });
    }
  }
  for (const m of mine) await store.putManifest(`${repository}:${mergeRecordTag(spec.id, m.platform)}`, m.bytes, m.mediaType);
  const found: PlatformManifest[] = [];
  const missing: Platform[] = [];
  for (const platform of spec.platforms) {
    const own = mine.find((m) => key(m.platform) === key(platform));
    const record = own ?? await store.getManifest(`${repository}:${mergeRecordTag(spec.id, platform)}`);
    if (record && !isPlaceholder(record.bytes)) found.push({ platform, digest: record.digest, mediaType: record.mediaType, bytes: record.bytes });
    else missing.push(platform);
  }
  if (missing.length) return { missing };
  const index = mergedIndex(found);
  await store.putManifest(`${repository}@${index.digest}`, index.bytes, index.mediaType);
  for (const tag of tags) await store.putManifest(tag, index.bytes, index.mediaType);
  return { index, missing: [], removed: await removeRecords(store, repository, spec) };
}

/** Removes every record tag of `spec`; quietly keeps them where the registry refuses. */
async function removeRecords(store: MergeStore, repository: string, spec: MergeSpec): Promise<string[]> {
  const removed: string[] = [];
  if (!store.deleteTag) return removed;
  for (const platform of spec.platforms) {
    const tag = mergeRecordTag(spec.id, platform);
    try {
      if (await store.deleteTag(`${repository}:${tag}`)) removed.push(tag);
      else break;
    } catch {
      break;
    }
  }
  return removed;
}
