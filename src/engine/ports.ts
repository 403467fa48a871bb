// What the engine needs from a registry, as a small interface: cli/ and action/ pass an adapter
// over src/registry, tests may pass any other implementation of the same contract.
import type { Descriptor, ImageConfig, Manifest, Platform } from '../oci/index.ts';

export interface BaseImage {
  /** Where the blobs can be fetched (and mounted) from: `registry/repository`. */
  repository: string;
  /** What the reference points at: the index it was chosen from, else the manifest itself. */
  topDigest: string;
  manifestDigest: string;
  manifest: Manifest;
  manifestBytes: Uint8Array;
  manifestMediaType: string;
  config: ImageConfig;
  configBytes: Uint8Array;
}

/** The referrers a registry lists for a subject (`state`: the adapter's own, handed back to it). */
export interface ReferrersListing { digests: string[]; readonly state: unknown }

/** An upload started before its blob is known: used once by `upload`, or given back by `release`. */
export interface UploadReservation {
  upload(desc: Descriptor, bytes: Uint8Array): Promise<void>;
  /** Ends the upload if `upload` was never called (a build that failed or made nothing to upload). */
  release(): Promise<void>;
}

/**
 * A blob sent to a repository ahead of its push, not published yet: `push` publishes it (the
 * committing PUT, or a whole push where sending it failed); `release` cancels it if never pushed.
 */
export interface StagedBlob {
  /** Settles when the bytes are sent, or sending them failed (never rejects). */
  sent: Promise<void>;
  push(): Promise<void>;
  release(): Promise<void>;
}

export interface RegistryPort {
  /** Resolves an image reference for a platform (an index is narrowed to the matching manifest). */
  resolve(ref: string, platform: Platform): Promise<BaseImage>;
  /** The digest a reference points at now (one HEAD), undefined when there is no such manifest. */
  head(ref: string): Promise<string | undefined>;
  /**
   * The digest `ref` points at in its own registry — never a mirror: a push asks whether the target
   * has it. Undefined when there is no such manifest.
   */
  headTarget(ref: string): Promise<string | undefined>;
  /** The blob's bytes, verified against `desc.digest` as they stream. */
  fetchBlob(repository: string, desc: Descriptor): Promise<AsyncIterable<Uint8Array>>;
  /**
   * Makes `desc` present in the repository of `target`: skips it when it is there, mounts it from
   * `mountFrom` on the same registry, else uploads it from `open()`.
   */
  pushBlob(target: string, desc: Descriptor, open: () => AsyncIterable<Uint8Array>, mountFrom?: string): Promise<void>;
  /**
   * Uploads a small blob into the repository of `target` without asking first whether it is there
   * (a fresh attestation's statement is new: one round trip less than pushBlob).
   */
  uploadBlob(target: string, desc: Descriptor, bytes: Uint8Array): Promise<void>;
  /**
   * Starts an upload in the repository of `target` now, for a small blob made later (a provenance
   * statement, made as the build ends): its upload then costs one round trip, not two.
   */
  reserveUpload?(target: string): UploadReservation;
  /** Starts sending a layer the build just made to the repository of `target`, unpublished (see StagedBlob). */
  stageBlob?(target: string, desc: Descriptor, open: () => AsyncIterable<Uint8Array>, mountFrom?: string): StagedBlob;
  /**
   * Starts sending a layer still being written (`open` yields its bytes as they land), unpublished;
   * `final` is its descriptor once written, which the bytes sent must match.
   */
  stageGrowingBlob?(target: string, open: () => AsyncIterable<Uint8Array>, final: Promise<Descriptor>): StagedBlob;
  /** A manifest by reference, with the repository its blobs are in; undefined when there is none. */
  getManifest(ref: string): Promise<{ bytes: Uint8Array; mediaType: string; digest: string; repository: string } | undefined>;
  /** PUTs a manifest or index under `ref` (a tag or a digest reference); returns its digest. */
  putManifest(ref: string, bytes: Uint8Array, mediaType: string): Promise<string>;
  /** Removes a tag; false where the registry allows no deletion. */
  deleteTag?(ref: string): Promise<boolean>;
  /**
   * PUTs artifact manifests whose `subject` is `subject` into `repository`, listed by the
   * registry's referrers API or else by the referrers tag schema; returns which. Each `desc` is the
   * descriptor a referrers list holds for its bytes.
   */
  pushReferrers?(repository: string, artifacts: Array<{ bytes: Uint8Array; desc: Descriptor }>, subject: string, listing?: ReferrersListing): Promise<'referrers-api' | 'tag-schema'>;
  /**
   * What the referrers tag schema lists for `subject` now, read before a push: a listed artifact is
   * there with its blobs and is not pushed again. Pass it back to pushReferrers.
   */
  readReferrers?(repository: string, subject: string): Promise<ReferrersListing>;
}
