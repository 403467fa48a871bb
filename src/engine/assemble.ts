// A target stage's final state as an image: the config as BuildKit's exporter writes it (request
// labels, platform, created), the manifest, and the index of several platforms.
import { UserError } from '../errors.ts';
import { imageIndex, jsonBytes, MediaType, sha256, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from '../oci/index.ts';
import type { BlobBytes, PlatformImage } from '../output/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { annotationsAt } from './annotations.ts';
import { tidyConfig } from './config.ts';
import type { StageState } from './state.ts';

export interface Assembled extends PlatformImage {
  state: StageState;
  configMediaType: string;
  size: number;
}

/** The image of `state` for `platform`; `created` is the build's (SOURCE_DATE_EPOCH or its start). */
export function assemble(state: StageState, platform: Platform, request: BuildRequest, created: string): Assembled {
  const docker = request.dockerMediaTypes;
  const cfg = state.config.config ?? {};
  const labels = Object.keys(request.labels).length ? { ...(cfg.Labels ?? {}), ...request.labels } : cfg.Labels;
  // Asked-for platforms are what the image says it is (BuildKit overwrites a stage's own, e.g. of a
  // `FROM --platform=$BUILDPLATFORM` final stage); otherwise the base image's.
  const own = request.platforms.length ? platform : { os: state.config.os || platform.os, architecture: state.config.architecture || platform.architecture, variant: state.config.variant || platform.variant };
  // Key order as BuildKit's (Go's) encoder writes the OCI image config.
  const config: ImageConfig = {
    // SOURCE_DATE_EPOCH, else the newest history entry's time: a cached rebuild keeps the digest.
    created: request.sourceDateEpoch !== undefined ? created : state.config.history?.at(-1)?.created ?? created,
    architecture: own.architecture,
    os: own.os,
    ...(state.config['os.version'] && !request.platforms.length ? { 'os.version': state.config['os.version'] } : {}),
    ...(own.variant ? { variant: own.variant } : {}),
    config: tidyConfig({ ...cfg, Labels: labels }),
    rootfs: { type: 'layers', diff_ids: state.layers.map((l) => l.diffID) },
    history: state.config.history ?? [],
  } as ImageConfig;
  const configBytes = jsonBytes(config);
  const configDigest = sha256(configBytes);
  const layers: Descriptor[] = state.layers.map((l) => ({ mediaType: layerMediaTypeFor(l.descriptor.mediaType, docker), digest: l.descriptor.digest, size: l.descriptor.size }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifest : MediaType.ociManifest,
    config: { mediaType: docker ? MediaType.dockerConfig : MediaType.ociConfig, digest: configDigest, size: configBytes.length },
    layers,
  };
  const annotations = annotationsAt(request, 'manifest', own);
  if (annotations) manifest.annotations = annotations;
  const manifestBytes = jsonBytes(manifest);
  return {
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    manifest: { bytes: manifestBytes, digest: sha256(manifestBytes), mediaType: manifest.mediaType! },
    config: { bytes: configBytes, digest: configDigest },
    layers: state.layers.map((l, i) => ({ descriptor: layers[i], path: '' })),
    state,
    configMediaType: manifest.config.mediaType,
    size: manifestBytes.length + configBytes.length + layers.reduce((n, l) => n + l.size, 0),
  };
}

/**
 * A layer's media type in the flavour of the manifest we write (the bytes are the same either
 * way), as BuildKit converts them (util/compression ConvertAllLayerMediaTypes); zstd has no Docker media type here.
 */
function layerMediaTypeFor(mediaType: string, docker: boolean): string {
  const gzip = [MediaType.ociLayerGzip, MediaType.dockerLayerGzip] as string[];
  const foreign = [MediaType.ociLayerNondistributableGzip, MediaType.dockerForeignLayerGzip] as string[];
  if (gzip.includes(mediaType)) return docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  if (foreign.includes(mediaType)) return docker ? MediaType.dockerForeignLayerGzip : MediaType.ociLayerNondistributableGzip;
  if (mediaType === MediaType.ociLayer || mediaType === MediaType.dockerLayer) return docker ? MediaType.dockerLayer : MediaType.ociLayer;
  if (docker && mediaType === MediaType.ociLayerZstd) throw new UserError('a zstd base layer cannot be written with Docker media types', { hint: 'drop --docker-media-types / oci-mediatypes=false, or add force-compression=true to convert it to gzip' });
  return mediaType;
}

/**
 * The index of several platform images, in the flavour of their manifests, with the `index` and
 * `manifest-descriptor` annotations asked for (none asked: the same bytes as ever).
 */
export function indexOf(images: Assembled[], request: BuildRequest): BlobBytes {
  const docker = images[0].manifest.mediaType === MediaType.dockerManifest;
  const plain = imageIndex(images.map((i) => ({ ...i.manifest, platform: i.platform })), docker);
  const top = annotationsAt(request, 'index');
  const described = images.map((i) => annotationsAt(request, 'manifest-descriptor', i.platform));
  if (!top && described.every((d) => !d)) return plain;
  const index = JSON.parse(plain.bytes.toString('utf8')) as Index;
  index.manifests = index.manifests.map((d, n) => (described[n] ? { ...d, annotations: described[n] } : d));
  if (top) index.annotations = top;
  const bytes = jsonBytes(index);
  return { bytes, digest: sha256(bytes), mediaType: plain.mediaType };
}

/** Whether a one-platform build needs an index anyway: annotations were asked for at its level. */
export function wantsIndex(request: BuildRequest): boolean {
  return (request.annotations ?? []).some((a) => a.level === 'index' || a.level === 'manifest-descriptor');
}
