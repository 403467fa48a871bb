// What the writers take: the built images as bytes and local blob files, already digested.
import { UserError } from '../errors.ts';
import { formatPlatform, imageIndex, platformMatches, sha256, type Descriptor, type Platform } from '../oci/index.ts';

export interface BlobBytes {
  bytes: Uint8Array;
  digest: string;
  mediaType: string;
}

export interface PlatformImage {
  platform: Platform;
  manifest: BlobBytes;
  config: { bytes: Uint8Array; digest: string };
  /** In manifest order; `path` is a local file holding the blob as `descriptor` describes it. */
  layers: Array<{ descriptor: Descriptor; path: string }>;
}

export interface BuiltImages {
  images: PlatformImage[];
  /** The image index; when absent and there are several images, the OCI writer makes one. */
  index?: BlobBytes;
  /** Image names, e.g. docker.io/library/app:1.0. */
  tags?: string[];
  /** `index-descriptor` annotations: on the top descriptor of an OCI layout's index.json. */
  descriptorAnnotations?: Record<string, string>;
}

export function checkDigests(b: BuiltImages): void {
  if (b.images.length === 0) throw new Error('no image to write');
  const check = (what: string, bytes: Uint8Array, digest: string) => {
    if (sha256(bytes) !== digest) throw new Error(`${what}: bytes do not match ${digest}`);
  };
  for (const img of b.images) {
    check(`manifest of ${formatPlatform(img.platform)}`, img.manifest.bytes, img.manifest.digest);
    check(`config of ${formatPlatform(img.platform)}`, img.config.bytes, img.config.digest);
  }
  if (b.index) check('image index', b.index.bytes, b.index.digest);
}

/** The top-level descriptor of the output: the index, or the one manifest. */
export function topLevel(b: BuiltImages): { descriptor: Descriptor; extraBlob?: BlobBytes } {
  if (b.index) return { descriptor: { mediaType: b.index.mediaType, digest: b.index.digest, size: b.index.bytes.length } };
  if (b.images.length === 1) {
    const m = b.images[0].manifest;
    return { descriptor: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, platform: b.images[0].platform } };
  }
  const blob = imageIndex(b.images.map((i) => ({ ...i.manifest, platform: i.platform })), false);
  return { descriptor: { mediaType: blob.mediaType, digest: blob.digest, size: blob.bytes.length }, extraBlob: blob };
}

/** The one image a single-platform format can hold. */
export function pickImage(b: BuiltImages, platform: Platform | undefined, format: string): PlatformImage {
  if (platform) {
    const found = b.images.find((i) => platformMatches(platform, i.platform));
    if (!found) throw new UserError(`no image for platform ${formatPlatform(platform)} to write as ${format}: built ${b.images.map((i) => formatPlatform(i.platform)).join(', ')}`);
    return found;
  }
  if (b.images.length > 1) {
    throw new UserError(`${format} holds one platform, but this build made ${b.images.length} (${b.images.map((i) => formatPlatform(i.platform)).join(', ')})`, {
      hint: 'build one platform (--platform linux/amd64), or write type=oci, which holds them all',
    });
  }
  return b.images[0];
}
