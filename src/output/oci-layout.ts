// The OCI image layout (oci-layout, index.json, blobs/sha256/…) as a directory or a tar file, named as
// buildx names it: org.opencontainers.image.ref.name = the tag, io.containerd.image.name = the full name.
import type { Descriptor, Index } from '../oci/index.ts';
import { MediaType, jsonBytes } from '../oci/index.ts';
import { checkDigests, topLevel, type BuiltImages } from './images.ts';
import { fullName, parseTagName } from './names.ts';
import { writeTreeAsDir, writeTreeAsTar, type TreeEntry } from './tree.ts';

export interface OciLayoutOptions extends BuiltImages {
  /** A directory, or the tar file to write when `tar` is true. */
  dest: string;
  tar: boolean;
  /** mtime of every tar entry (seconds since the epoch); default 0, so equal inputs give equal bytes. */
  sourceDateEpoch?: number;
}

export interface OutputResult {
  dest: string;
  /** Digest of the top-level manifest or index. */
  digest: string;
}

function blobName(digest: string): string {
  return `blobs/${digest.replace(':', '/')}`;
}

export async function writeOciLayout(o: OciLayoutOptions): Promise<OutputResult> {
  checkDigests(o);
  // Tags are checked before anything is written.
  const names = (o.tags ?? []).map(parseTagName);
  const top = topLevel(o);
  const blobs = new Map<string, TreeEntry>();
  const addBytes = (digest: string, bytes: Uint8Array) => blobs.set(digest, { name: blobName(digest), bytes });
  if (o.index) addBytes(o.index.digest, o.index.bytes);
  if (top.extraBlob) addBytes(top.extraBlob.digest, top.extraBlob.bytes);
  for (const img of o.images) {
    addBytes(img.manifest.digest, img.manifest.bytes);
    addBytes(img.config.digest, img.config.bytes);
    for (const l of img.layers) {
      if (!blobs.has(l.descriptor.digest)) blobs.set(l.descriptor.digest, { name: blobName(l.descriptor.digest), path: l.path, size: l.descriptor.size, digest: l.descriptor.digest });
    }
  }
  const extra = o.descriptorAnnotations;
  const manifests: Descriptor[] = names.length === 0
    ? [extra ? { ...top.descriptor, annotations: extra } : top.descriptor]
    : names.map((n) => ({ ...top.descriptor, annotations: { ...extra, 'io.containerd.image.name': fullName(n), 'org.opencontainers.image.ref.name': n.tag } }));
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests };
  const entries: TreeEntry[] = [
    { name: 'oci-layout', bytes: jsonBytes({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', bytes: jsonBytes(index) },
    ...blobs.values(),
  ];
  if (o.tar) await writeTreeAsTar(o.dest, entries, new Date((o.sourceDateEpoch ?? 0) * 1000));
  else await writeTreeAsDir(o.dest, entries);
  return { dest: o.dest, digest: top.descriptor.digest };
}
