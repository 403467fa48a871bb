// A whole build: one plan per target platform, their stages run concurrently (each once), the
// images assembled, then written out or pushed, and the step cache exported when asked.
import { LocalCache } from '../cache/index.ts';
import { UserError } from '../errors.ts';
import { planBuild } from '../dockerfile/index.ts';
import { hostPlatform, type Platform } from '../oci/index.ts';
import { findImageLoader, type ImageLoader } from '../output/index.ts';
import { checkLayerCompression, contextLookup, type BuildRequest } from '../request/index.ts';
import { assemble, indexOf, wantsIndex, type Assembled } from './assemble.ts';
import { makeAttestations } from './attestations.ts';
import type { RegistryPort } from './ports.ts';
import type { Progress } from './progress.ts';
import { buildChecks, resolverOf } from './checks.ts';
import { blobStream, heldBlobsReader, probeTags, publish, repositoryOf, reserveProvenanceUploads } from './publish.ts';
import { stagesInImages } from './image-stages.ts';
import { LayerStaging } from './staging.ts';
import { exportRegistryCache, importRegistryCache } from './registry-cache.ts';
import { StageScheduler } from './scheduler.ts';
import { BuildSession } from './session.ts';
import type { StageState } from './state.ts';

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
  /** What `--load` put into the local image store (names, or the image id). */
  loaded?: string[];
  /** The top manifest or index as pushed or written: buildx's containerimage.descriptor. */
  descriptor?: { mediaType: string; digest: string; size: number };
  /** Attestations attached (kind → count) and how the registry lists them. */
  attestations?: { provenance: number; sbom: number; referrers: string[] };
  /** The provenance predicate per platform, when one was made (buildx.build.provenance). */
  provenance?: Record<string, unknown>;
  steps: { cached: number; run: number };
  /** Layers compressed again from a blob of another compression (cached ones, or base ones under force-compression). */
  recompressed?: number;
  warnings: string[];
}

/** Runs the build the request describes. */
export async function build(request: BuildRequest, deps: BuildDeps): Promise<BuildResult> {
  // Before anything runs or is written: the compression must fit every output.
  checkLayerCompression(request);
  const buildPlatform = deps.buildPlatform ?? hostPlatform();
  const platforms = request.platforms.length ? request.platforms : [buildPlatform];
  const namedContext = contextLookup(request.namedContexts ?? []);
  const plans = platforms.map((targetPlatform) => planBuild({
    dockerfile: request.dockerfile.contents, path: request.dockerfile.path, buildArgs: request.buildArgs, target: request.target, targetPlatform, buildPlatform, namedContext,
  }));
  const warnings = [...new Set(plans.flatMap((p) => p.warnings))];
  if (request.tags.length && !request.load && !request.outputs.some((o) => o.type !== 'none')) {
    warnings.push('no output specified: the result stays in the build cache only (push it with --push, load it into Docker with --load, or write it with --output)');
  }
  for (const w of warnings) deps.progress.warn(w);
  // Before any step runs: --load without a daemon to load into fails now, not after the build.
  const loader: ImageLoader | undefined = request.load ? await findImageLoader() : undefined;
  const started = new Date();

  const session = await BuildSession.open(request, new LocalCache(request.cacheDir), deps.registry, deps.progress);
  const reserved = reserveProvenanceUploads(request, deps.registry, platforms.length);
  const inImages = stagesInImages(plans);
  // A `--cache-to mode=max` export takes every stage's layers: all are compressed then.
  if (request.cacheTo?.mode !== 'max') session.inImages = inImages;
  const pushes = request.outputs.some((o) => o.type === 'registry');
  const stageBlob = deps.registry?.stageBlob?.bind(deps.registry);
  if (deps.registry && pushes) {
    session.heldBlobs = heldBlobsReader(deps.registry, request.tags, platforms);
    session.tagProbes = probeTags(deps.registry, request, platforms);
  }
  if (stageBlob && pushes) {
    session.staging = new LayerStaging(stageBlob, [...new Set(request.tags.map(repositoryOf))], inImages, (l) => blobStream(session, l), deps.registry?.stageGrowingBlob?.bind(deps.registry));
  }
  const scheduler = new StageScheduler(session);
  const interrupt = () => session.abort(new UserError('the build was interrupted'));
  deps.signal?.addEventListener('abort', interrupt, { once: true });
  try {
    deps.signal?.throwIfAborted();
    // Registry caches first: they may hold how the bases resolve.
    if (request.cacheFrom.length && deps.registry) {
      session.steps.remoteRecords = await importRegistryCache(deps.registry, request.cacheFrom, (m) => deps.progress.warn(m));
    }
    // Then the build checks: they resolve the bases the stages then reuse; error=true stops here.
    const resolve = resolverOf(deps.registry ? (ref, p) => session.resolveImage(ref, p) : undefined);
    warnings.push(...await buildChecks(plans, { request, resolve, ignore: await session.ignoreMatcher() }, deps.progress));
    // Start every needed stage of every platform at once: each waits only for the stages it uses.
    // The first failure stops the running steps; everything settles before the work dir goes.
    const all = plans.flatMap((plan) => plan.stages.map((s) => scheduler.stage(plan, s)));
    for (const p of all) p.catch((e: unknown) => session.abort(e));
    const settled = await Promise.allSettled(all);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw session.firstError ?? (failed as PromiseRejectedResult).reason;
    const states = await Promise.all(plans.map((plan) => forceCompression(session, scheduler.stage(plan, plan.target))));
    const images = states.map((s, i) => assemble(s, platforms[i], request, session.created));
    const index = images.length > 1 || wantsIndex(request) ? indexOf(images, request) : undefined;
    const attestations = pushes ? await makeAttestations(session, images, { started, buildPlatform }) : undefined;
    if (request.attest && !pushes) deps.progress.warn('attestations are attached to pushed images only (as OCI referrers); this build pushes nothing, so none were made');
    const published = await publish(session, images, index, deps.registry, { attestations, loader, reserved });
    const top = published.merged ?? index ?? images[0].manifest;
    const made = [...(attestations?.byManifest.values() ?? [])].flat();
    if (request.cacheTo && deps.registry) await exportCache(session, images, deps.registry);
    return {
      digest: top.digest,
      imageId: published.merged || index ? top.digest : images[0].config.digest,
      images: images.map((img) => ({
        platform: img.platform, digest: img.manifest.digest, configDigest: img.config.digest, mediaType: img.manifest.mediaType, size: img.size, layers: img.layers.length,
      })),
      tags: request.tags,
      written: published.written,
      pushed: published.pushed,
      ...(loader ? { loaded: published.loaded } : {}),
      descriptor: { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length },
      ...(made.length ? {
        attestations: { provenance: made.filter((a) => a.predicateType.includes('slsa')).length, sbom: made.filter((a) => a.predicateType.includes('spdx')).length, referrers: published.referrers },
      } : {}),
      ...(attestations?.provenance.size ? { provenance: Object.fromEntries(attestations.provenance) } : {}),
      steps: { ...session.stats },
      recompressed: session.steps.recompressed,
      warnings,
    };
  } finally {
    deps.signal?.removeEventListener('abort', interrupt);
    await Promise.all([session.close(), session.staging?.release(), ...[...reserved.values()].flat().map((r) => r.release())]);
  }
}

/** `--cache-to`: mode=min exports the steps whose layers are in the images; max every stage's steps. */
async function exportCache(session: BuildSession, images: Assembled[], registry: RegistryPort): Promise<void> {
  const { ref, mode } = session.request.cacheTo!;
  const { usedRecords, variants } = session.steps;
  const reporter = session.progress.step(`exporting the cache to ${ref} (mode=${mode})`);
  const inImages = new Set(images.flatMap((img) => img.state.layers.map((l) => l.descriptor.digest)));
  // With an epoch, the images hold re-timed variants: their sources go too, to serve other epochs.
  const wanted = new Set([...usedRecords].filter(([, r]) => r.layer && inImages.has(r.layer.digest)).map(([k]) => k));
  // A variant's source may be a variant too (compression of an epoch's): a Set's loop visits what it adds.
  for (const k of wanted) { const from = variants.get(k); if (from) wanted.add(from); }
  // Base image resolutions are small and serve every mode: a runner with this cache asks no registry for them.
  const records = mode === 'max' ? usedRecords : new Map([...usedRecords].filter(([k, r]) => wanted.has(k) || r.base));
  await exportRegistryCache(registry, ref, records, (d) => blobStream(session, { descriptor: d, diffID: '' }), (m) => session.progress.warn(m));
  reporter.done();
}

/** A target's state with its base image layers converted to the build's compression, under force-compression. */
async function forceCompression(session: BuildSession, state: Promise<StageState>): Promise<StageState> {
  const s = await state;
  if (!session.request.compression?.force) return s;
  const reporter = session.progress.step(`[internal] force-compression: base layers as ${session.request.compression.type}`);
  try {
    const layers = await session.steps.forced(s.layers);
    reporter.done();
    return { ...s, layers };
  } catch (e) {
    reporter.failed(e);
    throw e;
  }
}
