// A new image from an existing one with only its config (and so its manifest) changed, for every
// platform of an index: the layers stay where they are (mounted into the target repository, never
// downloaded on one registry); the base's manifest and index annotations are kept, --annotation adds.
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { MediaType, isIndexMediaType, jsonBytes, sha256, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/index.ts';
import { withTarget, type Reference, type RegistryClient } from '../registry/index.ts';
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

async function mutateManifest(client: RegistryClient, src: Reference, dst: Reference, digest: string, opts: MutateOptions): Promise<{ bytes: Buffer; digest: string; mediaType: string }> {
  const got = await client.getManifest(withTarget(src, { digest }));
  const manifest = JSON.parse(got.bytes.toString()) as Manifest;
  if (!manifest.config?.digest) throw new UserError(`${src.toString()}@${digest}: not an image manifest (no config)`);
  const config = JSON.parse((await client.fetchBlobBytes(src, manifest.config, 16 << 20)).toString()) as ImageConfig;
  const added = opts.layers ?? [];
  const edited = editConfig(config, opts.edits);
  if (added.length) {
    edited.rootfs = { ...edited.rootfs, diff_ids: [...edited.rootfs.diff_ids, ...added.map((l) => l.diffID)] };
    // No time in the history: the same base and layers give the same digest.
    edited.history = [...(edited.history ?? []), ...added.map(() => ({ created_by: 'slipway append', comment: 'appended layer' }))];
  }
  const cfgBytes = jsonBytes(edited);
  const cfg: Descriptor = { ...manifest.config, digest: sha256(cfgBytes), size: cfgBytes.length };
  for (const layer of manifest.layers) await client.pushBlob(dst, layer, () => client.fetchBlob(src, layer), { mountFrom: [src] });
  const layerType = got.mediaType === MediaType.dockerManifest ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  const extra: Descriptor[] = added.map((l) => ({ mediaType: layerType, digest: l.digest, size: l.gzip.length }));
  for (let i = 0; i < added.length; i++) await client.pushBlob(dst, extra[i], () => Readable.from([added[i].gzip]));
  await client.pushBlob(dst, cfg, () => Readable.from([cfgBytes]));
  const bytes = jsonBytes(withAnnotations({ ...manifest, config: cfg, layers: [...manifest.layers, ...extra] }, opts.annotations));
  const out = sha256(bytes);
  await client.putManifest(withTarget(dst, { digest: out }), bytes, got.mediaType);
  return { bytes, digest: out, mediaType: got.mediaType };
}

/** Writes the mutated image (every platform) under each of `targets` (one repository). */
export async function mutateImage(client: RegistryClient, src: Reference, targets: Reference[], opts: MutateOptions): Promise<Mutated> {
  if (targets.length === 0) throw new UserError('mutate needs -t NEW: the base is never changed in place');
  const dst = targets[0];
  if (targets.some((t) => t.registry !== dst.registry || t.repository !== dst.repository)) throw new UserError('every -t must be in the same repository');
  const top = await client.getManifest(src);
  const manifests: Record<string, string> = {};
  let result: { bytes: Buffer; digest: string; mediaType: string };
  if (isIndexMediaType(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString()) as Index;
    const children: Descriptor[] = [];
    for (const d of index.manifests) {
      // Attestation manifests point at the old platform manifests: they do not describe the new ones.
      if (d.platform?.os === 'unknown' || isIndexMediaType(d.mediaType)) continue;
      const m = await mutateManifest(client, src, dst, d.digest, opts);
      manifests[d.digest] = m.digest;
      children.push({ ...d, digest: m.digest, size: m.bytes.length });
    }
    const bytes = jsonBytes(withAnnotations({ ...index, manifests: children }, opts.annotations));
    result = { bytes, digest: sha256(bytes), mediaType: top.mediaType };
    await client.putManifest(withTarget(dst, { digest: result.digest }), bytes, top.mediaType);
  } else {
    result = await mutateManifest(client, src, dst, top.digest, opts);
    manifests[top.digest] = result.digest;
  }
  for (const t of targets) if (t.tag) await client.putManifest(withTarget(t, { tag: t.tag }), result.bytes, result.mediaType);
  return { digest: result.digest, mediaType: result.mediaType, manifests };
}
