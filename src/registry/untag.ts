// Removing a tag. The distribution spec's DELETE /manifests/<tag> first; registries that only
// delete by digest (CNCF distribution 2.x with deletion enabled) untag every tag of a manifest they
// delete, so the tag is moved to a placeholder manifest of its own (unique to this repository and
// tag) and the placeholder is deleted by digest. Before the tag is moved, a placeholder pushed by
// digest alone is deleted as a probe: a registry that refuses deletion keeps the tag as it was.
import { Readable } from 'node:stream';
import { MediaType, jsonBytes, sha256, type Descriptor } from '../oci/index.ts';
import type { RegistryClient } from './client.ts';
import { withTarget, type Reference } from './reference.ts';

/** The artifact type of a placeholder; a manifest of this type is never an image. */
export const placeholderType = 'application/vnd.slipway.untag.v1';

const emptyBytes = Buffer.from('{}');
const empty: Descriptor = { mediaType: MediaType.ociEmpty, digest: sha256(emptyBytes), size: emptyBytes.length };

function placeholder(ref: Reference, probe: boolean): Buffer {
  return jsonBytes({
    schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: placeholderType, config: empty, layers: [empty],
    // The probe's bytes depend on the repository only: a registry that refuses deletion keeps at
    // most one untagged probe per repository, however many tags were to be removed.
    annotations: { 'org.slipway.untag': probe ? `${ref.repository} (probe)` : `${ref.repository}:${ref.tag ?? ''}` },
  });
}

/** True when `bytes` are a placeholder left by a removal in progress. */
export function isPlaceholder(bytes: Uint8Array): boolean {
  try {
    return (JSON.parse(Buffer.from(bytes).toString()) as { artifactType?: string }).artifactType === placeholderType;
  } catch {
    return false;
  }
}

/** Removes `ref`'s tag; false (and the tag unchanged) when the registry allows no deletion. */
export async function untag(client: RegistryClient, ref: Reference): Promise<boolean> {
  if (!ref.tag) throw new Error(`untag: ${ref.toString()} names no tag`);
  if (await client.deleteManifest(withTarget(ref, { tag: ref.tag }))) return true;
  await client.pushBlob(ref, empty, () => Readable.from([emptyBytes]));
  const probe = placeholder(ref, true);
  await client.putManifest(withTarget(ref, { digest: sha256(probe) }), probe, MediaType.ociManifest);
  if (!(await client.deleteManifest(withTarget(ref, { digest: sha256(probe) })))) return false;
  const bytes = placeholder(ref, false);
  await client.putManifest(withTarget(ref, { tag: ref.tag }), bytes, MediaType.ociManifest);
  return client.deleteManifest(withTarget(ref, { digest: sha256(bytes) }));
}
