// Documents built from parts, in the one byte form we write (so every writer of an index — the
// engine, the OCI layout, a later merge — gives the same digest for the same manifests).
import { jsonBytes, sha256 } from './digest.ts';
import { MediaType } from './mediatypes.ts';
import type { Index, Platform } from './types.ts';

/** The index of platform manifests, in the order given; Docker's manifest list when `docker`. */
export function imageIndex(manifests: Array<{ mediaType: string; digest: string; bytes: Uint8Array; platform: Platform }>, docker: boolean): { bytes: Buffer; digest: string; mediaType: string } {
  const mediaType = docker ? MediaType.dockerManifestList : MediaType.ociIndex;
  const index: Index = {
    schemaVersion: 2,
    mediaType,
    manifests: manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, platform: m.platform })),
  };
  const bytes = jsonBytes(index);
  return { bytes, digest: sha256(bytes), mediaType };
}
