// A whole build: one plan per target platform, their stages run concurrently (each once), the
// images assembled, then written out or pushed — blobs and per-platform manifests first, tags
// and the index last, so a failure never leaves a tag pointing at missing content.
import { LocalCache } from '../cache/index.ts';
import { UserError } from '../errors.ts';
import { boundedAll } from '../registry/index.ts';
import { planBuild } from '../dockerfile/index.ts';
import { formatPlatform, hostPlatform, jsonBytes, MediaType, sha256, type Descriptor, type ImageConfig, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { writeDockerArchive, writeOciLayout, type BlobBytes, type PlatformImage } from '../output/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { tidyConfig } from './config.ts';
import type { LayerRef } from './layers.ts';
import type { RegistryPort } from './ports.ts';
import type { Progress } from './progress.ts';
import { exportRegistryCache, importRegistryCache } from './registry-cache.ts';
import { BuildSession } from './session.ts';
import type { StageState } from './stage.ts';

export interface BuildDeps {
  progress: Progress;
  /** Registry access for base images and pushes; absent → builds that need neither still work. */
  registry?: RegistryPort;
  /** The platform builds run on (default: this machine's). */
  buildPlatform?: Platform;
  /** Aborting it (e.g. on Ctrl-C) stops the running steps; the build then cleans up and rejects. */
  signal?: AbortSignal;
}

export interface BuiltPlatform {
  platform: Platform;
  /** Manifest digest. */
  digest: string;
  configDigest: string;
  mediaType: string;
  /** Bytes of the manifest, config and layers. */
  size: number;
  layers: number;
}

export interface BuildResult {
  /** The index digest when several platforms were built, else the one manifest's. */
  digest: string;
  /** The config digest (one platform) or the index digest: what `docker images` calls the image id. */
  imageId: string;
  images: BuiltPlatform[];
  /** The image names asked for (`-t`), pushed or not. */
  tags: string[];
  /** References pushed (tags, then per-arch tags). */
  pushed: string[];
  /** Files or directories written. */
  written: string[];
  steps: { cached: number; run: number };
  warnings: string[];
}

interface Assembled extends PlatformImage {
  state: StageState;
  configMediaType: string;
  size: number;
}

/** Runs the build the request describes. */
export async function build(request: BuildRequest, deps: BuildDeps): Promise<BuildResult> {
  const buildPlatform = deps.buildPlatform ?? hostPlatform();
  const platforms = request.platforms.length ? request.platforms : [buildPlatform];
  const plans = platforms.map((targetPlatform) => planBuild({
    dockerfile: request.dockerfile.contents, path: request.dockerfile.path, buildArgs: request.buildArgs, target: request.target, targetPlatform, buildPlatform,
  }));
  const warnings = [...new Set(plans.flatMap((p) => p.warnings))];
  for (const w of warnings) deps.progress.warn(w);

  const cache = new LocalCache(request.cacheDir);
  const session = await BuildSession.open(request, cache, deps.registry, deps.progress);
  const interrupt = () => session.abort(new UserError('the build was interrupted'));
  deps.signal?.addEventListener('abort', interrupt, { once: true });
  try {
    deps.signal?.throwIfAborted();
    if (request.cacheFrom.length && deps.registry) {
      session.remoteRecords = await importRegistryCache(deps.registry, request.cacheFrom, (m) => deps.progress.warn(m));
    }
    // Start every needed stage of every platform at once: each waits only for the stages it uses.
    // The first failure stops the running steps; everything settles before the work dir goes.
    const all = plans.flatMap((plan) => plan.stages.map((s) => session.stage(plan, s)));
    for (const p of all) p.catch((e: unknown) => session.abort(e));
    const settled = await Promise.allSettled(all);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw session.firstError ?? (failed as PromiseRejectedResult).reason;
    const states = await Promise.all(plans.map((plan) => session.stage(plan, plan.target)));
    const images = await Promise.all(states.map((s, i) => assemble(session, s, platforms[i], request)));
    const index = images.length > 1 ? indexOf(images) : undefined;
    const top = index ?? images[0].manifest;
    const result: BuildResult = {
      digest: top.digest,
      imageId: index ? index.digest : images[0].config.digest,
      images: images.map((img) => ({
        platform: img.platform, digest: img.manifest.digest, configDigest: img.config.digest, mediaType: img.manifest.mediaType, size: img.size, layers: img.layers.length,
      })),
      tags: request.tags,
      pushed: [],
      written: [],
      steps: { ...session.stats },
      warnings,
    };
    await writeOutputs(session, request, images, index, result, deps.registry);
    if (request.cacheTo && deps.registry) {
      const { ref, mode } = request.cacheTo;
      const reporter = session.progress.step(`exporting the cache to ${ref} (mode=${mode})`);
      // mode=min: only the steps whose layers are in the images; max: every stage's steps.
      const inImages = new Set(images.flatMap((img) => img.state.layers.map((l) => l.descriptor.digest)));
      // With an epoch, the images hold re-timed variants: their sources go too, to serve other epochs.
      const wanted = new Set([...session.usedRecords].filter(([, r]) => r.layer && inImages.has(r.layer.digest)).map(([k]) => k));
      for (const k of [...wanted]) { const from = session.variants.get(k); if (from) wanted.add(from); }
      const records = mode === 'max' ? session.usedRecords : new Map([...session.usedRecords].filter(([k]) => wanted.has(k)));
      await exportRegistryCache(deps.registry, ref, records, (d) => blobStream(session, { descriptor: d, diffID: '' }), (m) => deps.progress.warn(m));
      reporter.done();
    }
    return result;
  } finally {
    deps.signal?.removeEventListener('abort', interrupt);
    await session.close();
  }
}

async function assemble(session: BuildSession, state: StageState, platform: Platform, request: BuildRequest): Promise<Assembled> {
  const docker = request.dockerMediaTypes;
  const cfg = state.config.config ?? {};
  const labels = Object.keys(request.labels).length ? { ...(cfg.Labels ?? {}), ...request.labels } : cfg.Labels;
  // Asked-for platforms are what the image says it is (BuildKit overwrites a stage's own, e.g. of a
  // `FROM --platform=$BUILDPLATFORM` final stage); otherwise the base image's.
  const own = request.platforms.length ? platform : { os: state.config.os || platform.os, architecture: state.config.architecture || platform.architecture, variant: state.config.variant || platform.variant };
  // Key order as BuildKit's (Go's) encoder writes the OCI image config.
  const config: ImageConfig = {
    // SOURCE_DATE_EPOCH, else the newest history entry's time: a cached rebuild keeps the digest.
    created: request.sourceDateEpoch !== undefined ? session.created : state.config.history?.at(-1)?.created ?? session.created,
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
  const manifestBytes = jsonBytes(manifest);
  const img: Assembled = {
    platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) },
    manifest: { bytes: manifestBytes, digest: sha256(manifestBytes), mediaType: manifest.mediaType! },
    config: { bytes: configBytes, digest: configDigest },
    layers: state.layers.map((l, i) => ({ descriptor: layers[i], path: '' })),
    state,
    configMediaType: manifest.config.mediaType,
    size: manifestBytes.length + configBytes.length + layers.reduce((n, l) => n + l.size, 0),
  };
  return img;
}

/**
 * A base layer's media type in the flavour of the manifest we write (the bytes are the same gzip
 * either way), as BuildKit converts them; zstd has no Docker media type.
 */
function layerMediaTypeFor(mediaType: string, docker: boolean): string {
  const gzip = [MediaType.ociLayerGzip, MediaType.dockerLayerGzip] as string[];
  const foreign = [MediaType.ociLayerNondistributableGzip, MediaType.dockerForeignLayerGzip] as string[];
  if (gzip.includes(mediaType)) return docker ? MediaType.dockerLayerGzip : MediaType.ociLayerGzip;
  if (foreign.includes(mediaType)) return docker ? MediaType.dockerForeignLayerGzip : MediaType.ociLayerNondistributableGzip;
  if (docker && mediaType === MediaType.ociLayerZstd) throw new UserError('a zstd layer cannot be written with Docker media types', { hint: 'drop --docker-media-types, or use a gzip base image' });
  return mediaType;
}

function indexOf(images: Assembled[]): BlobBytes {
  const docker = images[0].manifest.mediaType === MediaType.dockerManifest;
  const index: Index = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.dockerManifestList : MediaType.ociIndex,
    manifests: images.map((i) => ({ mediaType: i.manifest.mediaType, digest: i.manifest.digest, size: i.manifest.bytes.length, platform: i.platform })),
  };
  const bytes = jsonBytes(index);
  return { bytes, digest: sha256(bytes), mediaType: index.mediaType! };
}

async function writeOutputs(session: BuildSession, request: BuildRequest, images: Assembled[], index: BlobBytes | undefined, result: BuildResult, registry: RegistryPort | undefined): Promise<void> {
  const files = request.outputs.filter((o) => o.type === 'oci' || o.type === 'docker');
  if (files.length) {
    // File outputs hold every blob, so base layers still in their registry are fetched now.
    for (const img of images) {
      for (let i = 0; i < img.layers.length; i++) img.layers[i].path = await session.layers.local(img.state.layers[i]);
    }
    for (const o of files) {
      const built = { images, index, tags: request.tags };
      const reporter = session.progress.step(`exporting to ${o.type === 'oci' ? 'an OCI layout' : 'a docker archive'} ${o.dest}`);
      try {
        const out = o.type === 'oci'
          ? await writeOciLayout({ ...built, dest: o.dest, tar: o.tar, sourceDateEpoch: request.sourceDateEpoch })
          : await writeDockerArchive({ ...built, dest: o.dest, sourceDateEpoch: request.sourceDateEpoch });
        result.written.push(out.dest);
        reporter.done();
      } catch (e) {
        reporter.failed(e);
        throw e;
      }
    }
  }
  if (request.outputs.some((o) => o.type === 'registry')) {
    if (!registry) throw new Error('pushing needs registry access');
    const reporter = session.progress.step(`pushing ${request.tags.join(', ')}`);
    try {
      result.pushed = await push(session, registry, request, images, index);
      reporter.done();
    } catch (e) {
      reporter.failed(e);
      throw e;
    }
  }
}

function archTag(tag: string, p: Platform): string {
  return `${tag}-${p.architecture}${p.variant ?? ''}`;
}

/** Every blob and per-platform manifest (by digest) first; tags and the index only after all of them. */
async function push(session: BuildSession, registry: RegistryPort, request: BuildRequest, images: Assembled[], index: BlobBytes | undefined): Promise<string[]> {
  const repos = [...new Set(request.tags.map(repositoryOf))];
  const byDigest = (repo: string, digest: string) => `${repo}@${digest}`;
  for (const repo of repos) {
    for (const img of images) {
      await boundedAll(4, img.state.layers.map((l: LayerRef, i) => () => registry.pushBlob(repo, img.layers[i].descriptor, () => blobStream(session, l), l.repository)));
      const cfg = img.config.bytes;
      await registry.pushBlob(repo, { mediaType: img.configMediaType, digest: img.config.digest, size: cfg.length }, async function* () { yield cfg; });
      await registry.putManifest(byDigest(repo, img.manifest.digest), img.manifest.bytes, img.manifest.mediaType);
    }
    if (index) await registry.putManifest(byDigest(repo, index.digest), index.bytes, index.mediaType);
  }
  const pushed: string[] = [];
  const top = index ?? images[0].manifest;
  for (const tag of request.tags) {
    await registry.putManifest(tag, top.bytes, top.mediaType);
    pushed.push(tag);
  }
  if (request.perArchTags) {
    for (const tag of request.tags) {
      for (const img of images) {
        const t = archTag(tag, img.platform);
        await registry.putManifest(t, img.manifest.bytes, img.manifest.mediaType);
        pushed.push(t);
      }
    }
  }
  session.progress.info(`pushed ${formatPlatform(images[0].platform)}${images.length > 1 ? ` and ${images.length - 1} more` : ''} as ${top.digest}`);
  return pushed;
}

async function* blobStream(session: BuildSession, layer: LayerRef): AsyncIterable<Uint8Array> {
  const { createReadStream } = await import('node:fs');
  yield* createReadStream(await session.layers.local(layer));
}

/** `registry/repo:tag` or `registry/repo@digest` → `registry/repo` (the tag may have a port before it). */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
