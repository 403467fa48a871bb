// The step cache in a registry (`--cache-to/--cache-from type=registry,ref=…`), so runners that
// share no disk share layers: one OCI artifact whose config maps step keys to their records and
// whose layers are those records' blobs. Importing reads only the config; a blob is fetched when
// its step is looked up. A cache that can't be read or written costs a warning, never the build.
import type { CacheRecord } from '../cache/index.ts';
import { jsonBytes, MediaType, sha256, type Descriptor, type Manifest } from '../oci/index.ts';
import type { RegistryPort } from './ports.ts';

export const cacheArtifactType = 'application/vnd.slipway.cache.v1';
const cacheConfigType = 'application/vnd.slipway.cache.config.v1+json';

interface CacheConfig { records: Record<string, CacheRecord> }

/** Step records from cache refs, each with the repository its blobs are fetched from. */
export type RemoteRecords = Map<string, { record: CacheRecord; repository: string }>;

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

export async function importRegistryCache(registry: RegistryPort, refs: string[], warn: (m: string) => void): Promise<RemoteRecords> {
  const out: RemoteRecords = new Map();
  for (const ref of refs) {
    try {
      const found = await registry.getManifest(ref);
      if (!found) { warn(`cache-from ${ref}: not found (a first build writes it with --cache-to)`); continue; }
      const manifest = JSON.parse(Buffer.from(found.bytes).toString('utf8')) as Manifest;
      if (manifest.config?.mediaType !== cacheConfigType) { warn(`cache-from ${ref}: not a slipway cache, ignored`); continue; }
      const repository = found.repository;
      const config = JSON.parse((await collect(await registry.fetchBlob(repository, manifest.config))).toString('utf8')) as CacheConfig;
      for (const [key, record] of Object.entries(config.records ?? {})) if (!out.has(key)) out.set(key, { record, repository });
    } catch (e) {
      warn(`cache-from ${ref}: ${e instanceof Error ? e.message : String(e)}; building without it`);
    }
  }
  return out;
}

/** Pushes the records (and their blobs, from `open`) as one artifact under `ref`. */
export async function exportRegistryCache(
  registry: RegistryPort, ref: string, records: Map<string, CacheRecord>, open: (desc: Descriptor) => AsyncIterable<Uint8Array>, warn: (m: string) => void,
): Promise<void> {
  try {
    const layers = new Map<string, Descriptor>();
    for (const r of records.values()) {
      if (r.layer) layers.set(r.layer.digest, { mediaType: r.layer.mediaType, digest: r.layer.digest, size: r.layer.size });
      // A base image's resolution travels with its manifest and config bytes.
      for (const d of r.base ? [r.base.manifest, r.base.config] : []) layers.set(d.digest, { mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    const sorted = [...records.keys()].sort();
    const config = jsonBytes({ records: Object.fromEntries(sorted.map((k) => [k, records.get(k)!])) } satisfies CacheConfig);
    const configDesc: Descriptor = { mediaType: cacheConfigType, digest: sha256(config), size: config.length };
    for (const d of layers.values()) await registry.pushBlob(ref, d, () => open(d));
    await registry.pushBlob(ref, configDesc, async function* () { yield config; });
    const manifest: Manifest = {
      schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: cacheArtifactType, config: configDesc,
      layers: [...layers.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
    };
    await registry.putManifest(ref, jsonBytes(manifest), MediaType.ociManifest);
  } catch (e) {
    warn(`cache-to ${ref}: ${e instanceof Error ? e.message : String(e)}; the build itself succeeded`);
  }
}
