// An index made from manifests and indexes already in a registry (buildx's `imagetools create`):
// every source by tag or digest; an index source contributes its descriptors as they are, a
// manifest source one descriptor with the platform its config names. Sources in another
// repository are copied into the target's first (blobs mounted on the same registry), so the
// index never points at content its repository lacks.
import { UserError } from '../errors.ts';
import { MediaType, isIndexMediaType, jsonBytes, normalizePlatform, sha256, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/index.ts';
import type { RegistryClient } from './client.ts';
import { withTarget, type Reference } from './reference.ts';

export interface CreateIndexOptions {
  /** Put the target's current index (or manifest) first, as buildx's --append. */
  append?: boolean;
  /** The index's own annotations. */
  annotations?: Record<string, string>;
  /** Build the bytes, push nothing. */
  dryRun?: boolean;
  log?: (line: string) => void;
  /** Copies a registry source in another repository into `target` (pinned to its digest): the caller's copy. */
  copyInto?: (src: Reference, target: Reference) => Promise<void>;
}

/** A source read elsewhere (a file transport): its descriptors, and how to put it into the target. */
export interface PreparedSource {
  name: string;
  mediaType: string;
  descriptors: Descriptor[];
  /** Copies the source into `target`'s repository (not called on a dry run). */
  copyInto(target: Reference): Promise<void>;
}

export interface CreatedIndex {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

const sameRepo = (a: Reference, b: Reference) => a.registry === b.registry && a.repository === b.repository;

/** The descriptors a source contributes, read from the registry. */
async function descriptorsOf(client: RegistryClient, src: Reference): Promise<{ descriptors: Descriptor[]; mediaType: string }> {
  const top = await client.getManifest(src);
  if (isIndexMediaType(top.mediaType)) return { descriptors: (JSON.parse(top.bytes.toString()) as Index).manifests, mediaType: top.mediaType };
  const manifest = JSON.parse(top.bytes.toString()) as Manifest;
  if (!manifest.config?.digest) throw new UserError(`${src.toString()}: not an image manifest (no config), so it has no platform to list`);
  const config = JSON.parse((await client.fetchBlobBytes(src, manifest.config, 16 << 20)).toString()) as ImageConfig;
  if (!config.os || !config.architecture) throw new UserError(`${src.toString()}: its config names no os/architecture, so the index cannot say which platform it is`);
  // From the config, normalised as containerd's platforms.Normalize does (buildx does the same).
  const platform = normalizePlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}), ...(config['os.version'] ? { 'os.version': config['os.version'] } : {}) });
  return { descriptors: [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length, platform }], mediaType: top.mediaType };
}

/** Makes the index over `sources` and pushes it under every tag of `targets` (one repository). */
export async function createIndex(client: RegistryClient, sources: Array<Reference | PreparedSource>, targets: Reference[], opts: CreateIndexOptions = {}): Promise<CreatedIndex> {
  if (targets.length === 0) throw new UserError('imagetools create needs at least one -t TARGET');
  const target = targets[0];
  if (targets.some((t) => !sameRepo(t, target))) throw new UserError('every -t of one index must be in the same repository', { hint: 'run imagetools create once per repository, or copy the result' });
  const all = [...(opts.append ? [target] : []), ...sources];
  if (all.length === 0) throw new UserError('imagetools create needs at least one SOURCE (or --append)');
  const seen = new Set<string>();
  const manifests: Descriptor[] = [];
  let docker = true;
  for (const src of all) {
    const got = 'copyInto' in src ? src : await descriptorsOf(client, src);
    if (got.mediaType !== MediaType.dockerManifest && got.mediaType !== MediaType.dockerManifestList) docker = false;
    for (const d of got.descriptors) {
      if (d.mediaType !== MediaType.dockerManifest) docker = false;
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      manifests.push(d);
    }
    if ('copyInto' in src) {
      if (!opts.dryRun) await src.copyInto(target);
    } else if (!opts.dryRun && !sameRepo(src, target)) {
      if (!opts.copyInto) throw new Error(`createIndex: ${src.toString()} is in another repository and no copyInto was given`);
      await opts.copyInto(src, withTarget(target, { digest: (await client.getManifest(src)).digest }));
    }
  }
  const annotations = opts.annotations && Object.keys(opts.annotations).length ? opts.annotations : undefined;
  const mediaType = docker && !annotations ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index: Index = { schemaVersion: 2, mediaType, manifests, ...(annotations ? { annotations } : {}) };
  const bytes = jsonBytes(index);
  const digest = sha256(bytes);
  if (!opts.dryRun) {
    await client.putManifest(withTarget(target, { digest }), bytes, mediaType);
    for (const t of targets) if (t.tag) await client.putManifest(withTarget(t, { tag: t.tag }), bytes, mediaType);
  }
  return { digest, mediaType, bytes };
}
