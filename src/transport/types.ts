// The two shapes every transport has: a source of one image or index (manifests by digest, blobs
// by descriptor, each read verified), and a sink that takes blobs, then manifests, then the top.
import type { Readable } from 'node:stream';
import type { Descriptor, Platform } from '../oci/index.ts';
import type { Reference } from '../registry/index.ts';

export interface ManifestBytes {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface ImageSource {
  /** The name as the user gave it, for messages. */
  readonly name: string;
  /** Where blobs can be mounted from, for a registry source. */
  readonly registryRef?: Reference;
  /** The manifest or index the name points at. */
  top(): Promise<ManifestBytes>;
  /** A manifest of this image by digest (`mediaType`: what the descriptor pointing at it says). */
  manifest(digest: string, mediaType?: string): Promise<ManifestBytes>;
  /** A blob's bytes, verified against `desc` as they are read. */
  blob(desc: Descriptor): Readable;
  close(): Promise<void>;
}

export interface ImageSink {
  readonly name: string;
  /** True when the format keeps one platform only and rewrites its manifest (docker-archive). */
  readonly singlePlatform: boolean;
  /** False when putManifest makes nothing of `platform` (a registry): a copy then reads no config for it. */
  readonly wantsPlatform?: boolean;
  /** Blobs the copy sends at once (default 4). */
  readonly concurrency?: number;
  /** Makes a blob present (mounted from `from` where the sink can). */
  putBlob(desc: Descriptor, open: () => Readable, from?: ImageSource): Promise<'exists' | 'mounted' | 'uploaded' | 'written'>;
  /** Stores a manifest or index by digest; its blobs (and children) are already in. */
  putManifest(m: ManifestBytes, platform?: Platform): Promise<void>;
  /** Names `top` (tags, index.json, the archive file); returns the digest the sink holds it under. */
  commit(top: ManifestBytes): Promise<string>;
  close(): Promise<void>;
}

/** An image name: a registry reference or a file transport (skopeo's names). */
export type ImageName =
  | { transport: 'docker'; ref: Reference; text: string }
  | { transport: 'oci' | 'oci-archive' | 'docker-archive'; path: string; tag?: string; text: string };
