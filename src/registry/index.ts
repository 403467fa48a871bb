/**
 * registry: talks to OCI / Docker registries over HTTP (undici) — image references, credentials
 * and auth challenges, verified pulls of manifests and blobs, pushes with HEAD / mount / chunked
 * uploads, and `imagetools create`'s index (copies go through ../transport's one copy loop). Takes all
 * settings as options; never reads process.env.
 * Imports only ../oci, ../errors and ../limit.
 */
export { parseReference, withTarget, type Reference } from './reference.ts';
export type { TransportOptions } from './transport.ts';
export { RegistryAnswerError } from './transport.ts';
export { RegistryClient, type RegistryClientOptions, type ManifestData, type PlatformImage, type PushResult } from './client.ts';
export { selectPlatform } from './platforms.ts';
export { registryOptionsFromEnv, mirrorRulesFromEnv } from './env.ts';
export { parseMirrorFlag, pullSources, insecureMirrorHosts, type MirrorRule, type Mirror } from './mirrors.ts';
export { pushReferrers, readReferrersListing, type ReferrersListing, listReferrers, referrersTag, type ReferrerStore } from './referrers.ts';
export { recordAndMerge, mergedIndex, mergeRecordTag, checkMergeSpec, type MergeSpec, type MergeStore, type MergeOutcome, type PlatformManifest } from './merge.ts';
export { createIndex, type CreateIndexOptions, type CreatedIndex, type PreparedSource } from './imagetools.ts';
export { untag, isPlaceholder } from './untag.ts';
