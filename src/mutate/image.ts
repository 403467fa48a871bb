// A new image from an existing one with only its config (and so its manifest) changed, for every
// platform of an index: the layers stay where they are (mounted into the target repository, never
// downloaded on one registry); the base's manifest and index annotations are kept, --annotation adds.
// The base is any transport's source and the result goes to any sink (../transport).
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { MediaType, isIndexMediaType, jsonBytes, sha256, type Descriptor, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { readConfig, type ImageSink, type ImageSource, type ManifestBytes } from '../transport/index.ts';
import { editConfig, type ConfigEdits } from './config.ts';
import type { AddedLayer } from './layer.ts';

export interface MutateOptions {
  edits: ConfigEdits;
  /** Layers to append on top of every platform (crane append). */
  layers?: AddedLayer[];
  /** Added to each manifest and the index (KEY → VALUE). */
  annotations?: Record<string, string>;
}

export interface Mutated {
  digest: string;
  mediaType: string;
  /** Platform manifests written (old digest → new digest). */
  manifests: Record<string, string>;
}

const withAnnotations = <T extends { annotations?: Record<string, string> }>(doc: T, add: Record<string, string> | undefined): T =>
  (add && Object.keys(add).length ? { ...doc, annotations: { ...(doc.annotations ?? {}), ...add } } : doc);

async function mutateManifest(src: ImageSource, sink: ImageSink, base: ManifestBytes, platform: Platform | undefined, opts: MutateOptions): Promise<ManifestBytes> {
  const manifest = JSON.parse(base.bytes.toString()) as Manifest;
  if (!manifest.config?.digest) throw new UserError(`${src.name}@${base.digest}: not an image manifest (no config)`);
  const { config } = await readConfig(src, manifest);
  const added = opts.layers ?? [];
  const edited = editConfig(config, opts.edits);
  if (added.length) {
    edited.rootfs = { ...edited.rootfs, diff_ids: [...edited.rootfs.diff_ids, ...added.map((l) => l.diffID)] };
    // No time in the history: the same base and layers give the same digest.
    edited.history = [...(edited.history ?? []), ...added.map(() => ({ created_by: 'slipway append', comment: 'appended layer' }))];
  }
  const cfgBytes = jsonBytes(edited);
  const cfg: Descriptor = { ...manifest.config, digest: sha256(cfgBytes), size: cfgBytes.length };
  for (const layer of manifest.layers) await sink.putBlob(layer, () => src.blob(layer), src);
  const layerType = base.mediaType === MediaType.dockerManifest ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  const extra: Descriptor[] = added.map((l) => ({ mediaType: layerType, digest: l.digest, size: l.gzip.length }));
  for (let i = 0; i < added.length; i++) await sink.putBlob(extra[i], () => Readable.from([added[i].gzip]));
  await sink.putBlob(cfg, () => Readable.from([cfgBytes]));
  const bytes = jsonBytes(withAnnotations({ ...manifest, config: cfg, layers: [...manifest.layers, ...extra] }, opts.annotations));
  const out: ManifestBytes = { bytes, digest: sha256(bytes), mediaType: base.mediaType };
  await sink.putManifest(out, platform ?? { os: edited.os, architecture: edited.architecture, ...(edited.variant ? { variant: edited.variant } : {}) });
  return out;
}

/** Writes the mutated image (every platform) to `sink`, which names it on commit. */
export async function mutateImage(src: ImageSource, sink: ImageSink, opts: MutateOptions): Promise<Mutated> {
  const top = await src.top();
  const manifests: Record<string, string> = {};
  let result: ManifestBytes;
  if (isIndexMediaType(top.mediaType)) {
    if (sink.singlePlatform) throw new UserError(`${sink.name} holds one platform, but ${src.name} is a multi-platform index`, { hint: 'write to a registry, oci: or oci-archive:' });
    const index = JSON.parse(top.bytes.toString()) as Index;
    const children: Descriptor[] = [];
    for (const d of index.manifests) {
      // Attestation manifests point at the old platform manifests: they do not describe the new ones.
      if (d.platform?.os === 'unknown' || isIndexMediaType(d.mediaType)) continue;
      const m = await mutateManifest(src, sink, await src.manifest(d.digest, d.mediaType), d.platform, opts);
      manifests[d.digest] = m.digest;
      children.push({ ...d, digest: m.digest, size: m.bytes.length });
    }
    const bytes = jsonBytes(withAnnotations({ ...index, manifests: children }, opts.annotations));
    result = { bytes, digest: sha256(bytes), mediaType: top.mediaType };
    await sink.putManifest(result);
  } else {
    result = await mutateManifest(src, sink, top, undefined, opts);
    manifests[top.digest] = result.digest;
  }
  const digest = await sink.commit(result);
  return { digest, mediaType: result.mediaType, manifests };
}
