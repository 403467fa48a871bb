// The services one build shares across stages and platforms: the layer store and step cache, the
// registry, the runtime, memoised base images and rootfs directories, the build context, cache
// mounts, the abort signal, and the per-build scratch directory. No step logic lives here.
import { statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LocalCache } from '../cache/index.ts';
import { loadMatcher, walkContext, type BuildPlan, type EvaluatedStep, type PatternMatcher, type PlannedStage } from '../dockerfile/index.ts';
import { UserError } from '../errors.ts';
import { ContextHashes, defaultLevel, dirTree, includeList, overlaySupported, prepareOverlay, type Compression, type GrowingBlob, type OverlayMount, type SourceTree } from '../fs/index.ts';
import { formatPlatform, type Platform } from '../oci/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { chooseIsolation, prepareIsolation, type IsolationChoice } from '../runtime/index.ts';
import { BaseImages } from './base-images.ts';
import { CacheMounts } from './cache-mounts.ts';
import { imageKey } from './keys.ts';
import { LayerStore, type LayerRef } from './layers.ts';
import { cacheDirFilter, linkedCopy, NamedContexts } from './named-contexts.ts';
import type { BaseImage, RegistryPort } from './ports.ts';
import type { Progress } from './progress.ts';
import type { StageState } from './state.ts';
import { StepCache, type LayerOptions, type WriteCompression } from './step-cache.ts';
import { stageId, type StageId } from './image-stages.ts';
import type { LayerStaging } from './staging.ts';
import { makeBuildDir, sweepAbandonedBuilds } from './sweep.ts';

/** What each tag a push writes named when a HEAD asked, and when the answer came (undefined: nothing, or no answer). */
export type TagProbes = Map<string, Promise<{ digest: string | undefined; at: number }>>;

export class BuildSession {
  readonly request: BuildRequest;
  readonly progress: Progress;
  readonly layers: LayerStore;
  readonly steps: StepCache;
  readonly cacheMounts: CacheMounts;
  /** `--build-context` entries, fetched and read as steps need them. */
  readonly contexts: NamedContexts;
  readonly multiPlatform: boolean;
  /** `created` for history entries and the config: SOURCE_DATE_EPOCH, or the build's start. */
  readonly created: string;
  readonly stats = { cached: 0, run: 0 };
  /** Sends the layers the steps make to the push's repositories ahead of the push (build() sets it when pushing). */
  staging: LayerStaging | undefined;
  /** What the push's repositories hold now (build() sets it when pushing): read from the first cache miss on. */
  heldBlobs: (() => Map<string, Promise<Set<string>>>) | undefined;
  /** What the push's tags name, asked as the build starts (build() sets it when pushing). */
  tagProbes: TagProbes | undefined;
  /** The stages whose layers the images hold (build() sets it); undefined: every stage's. */
  inImages: Set<StageId> | undefined;
  /** Aborted at the first failure, so steps of other stages and platforms stop too. */
  private readonly aborter = new AbortController();
  /** The failure that aborted the build (later ones are its consequences). */
  firstError: unknown;
  private readonly registry: RegistryPort | undefined;
  private readonly images = new Map<string, Promise<BaseImage>>();
  private bases: BaseImages | undefined;
  private readonly rootfs = new Map<string, Promise<string>>();
  private readonly mounts: OverlayMount[] = [];
  private matcher: Promise<PatternMatcher> | undefined;
  private contextDirCopy: Promise<string> | undefined;
  private cacheDirTest: ((rel: string) => boolean) | undefined;
  private contextIncluded: Promise<(rel: string) => boolean> | undefined;
  private isolationChoice: Promise<IsolationChoice> | undefined;
  private readonly plainRoots = new Map<string, string>();
  private runRootDir: Promise<string> | undefined;
  private contextHashes: ContextHashes | undefined;
  private readonly extraDirs: string[] = [];
  private overlayOk: Promise<boolean> | undefined;
  private readonly preparing = new Map<string, Promise<void>>();
  /** The cache dir's tmp/, where this build's own dir is made when first needed. */
  private readonly tmp: string;
  private buildDir: string | undefined;

  private constructor(request: BuildRequest, cache: LocalCache, registry: RegistryPort | undefined, progress: Progress, tmp: string) {
    this.request = request;
    this.progress = progress;
    this.registry = registry;
    this.layers = new LayerStore(cache, registry);
    this.cacheMounts = new CacheMounts(cache.dir);
    this.tmp = tmp;
    this.multiPlatform = request.platforms.length > 1;
    const epoch = request.sourceDateEpoch;
    this.created = new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString().replace(/\.000Z$/, 'Z');
    this.steps = new StepCache(this.layers, {
      noCache: request.noCache, dockerMediaTypes: request.dockerMediaTypes, sourceDateEpoch: epoch, created: this.created, compression: layerCompressionOf(request),
      // A miss that a RUN step follows starts the overlay probe, beside the missed step's work; so
      // a cached build, or one whose only miss is a last COPY, probes nothing.
      beforeMake: (runFollows) => {
        if (runFollows) void this.overlay();
        this.heldBlobs?.();
      },
    });
    this.contexts = new NamedContexts(request.namedContexts ?? [], {
      layers: this.layers, steps: this.steps, workRoot: () => this.workRoot, cacheDir: cache.dir, created: this.created,
      imageState: (ref, p) => this.imageState(ref, p), reporter: (t) => progress.step(t),
    });
  }

  /** A session on `cache`, after removing the build dirs of builds that died there. */
  static async open(request: BuildRequest, cache: LocalCache, registry: RegistryPort | undefined, progress: Progress): Promise<BuildSession> {
    const tmp = join(cache.dir, 'tmp');
    await sweepAbandonedBuilds(tmp);
    return new BuildSession(request, cache, registry, progress, tmp);
  }

  /**
   * This build's scratch dir (rootfs copies, overlay uppers, downloads), under the cache dir's
   * tmp/: made on first use, so a fully cached build makes and removes nothing.
   */
  get workRoot(): string {
    this.buildDir ??= makeBuildDir(this.tmp);
    return this.buildDir;
  }

  get signal(): AbortSignal { return this.aborter.signal; }

  abort(reason: unknown): void {
    if (this.aborter.signal.aborted) return;
    this.firstError = reason;
    this.aborter.abort(reason);
  }

  resolveImage(ref: string, platform: Platform): Promise<BaseImage> {
    const id = `${ref}|${formatPlatform(platform)}`;
    let p = this.images.get(id);
    if (!p) {
      const registry = this.registry;
      if (!registry) throw new UserError(`this build needs the image ${ref}, but no registry access was configured`);
      const reporter = this.progress.step(`[internal] load metadata for ${ref}${this.multiPlatform ? ` (${formatPlatform(platform)})` : ''}`);
      this.bases ??= new BaseImages(this.layers.cache, registry, {
        pull: this.request.pull, warn: (m) => this.progress.warn(m), remote: () => this.steps.remoteRecords, used: (k, r) => this.steps.usedRecords.set(k, r),
      });
      p = this.bases.resolve(ref, platform);
      p.then(() => reporter.done(), (e: unknown) => reporter.failed(e));
      this.images.set(id, p);
    }
    return p;
  }

  /** Every image resolved so far (bases, COPY --from and mount sources): for provenance materials. */
  async resolvedImages(): Promise<Array<{ ref: string; platform: string; digest: string }>> {
    const out: Array<{ ref: string; platform: string; digest: string }> = [];
    for (const [id, p] of this.images) {
      const bar = id.lastIndexOf('|');
      const image = await p.catch(() => undefined);
      if (image) out.push({ ref: id.slice(0, bar), platform: id.slice(bar + 1), digest: image.manifestDigest });
    }
    return out;
  }

  /** An image (a base, or the source of COPY --from=image and mounts) as a stage state. */
  async imageState(ref: string, platform: Platform): Promise<StageState> {
    const image = await this.resolveImage(ref, platform);
    const layers = image.manifest.layers.map((d, i) => ({ descriptor: d, diffID: image.config.rootfs.diff_ids[i], repository: image.repository }));
    if (layers.some((l) => !l.diffID)) throw new UserError(`image ${ref}: its config lists fewer diff_ids than its manifest has layers`);
    return { platform, config: image.config, layers, key: imageKey(image.manifestDigest) };
  }

  /** The state's files in a directory (extracted once per build), for COPY --from and bind mounts. */
  rootfsOf(state: StageState): Promise<string> {
    let p = this.rootfs.get(state.key);
    if (!p) {
      p = (async () => {
        // Where overlay mounts, the extracted layers (a RUN's are already there) are stacked, not copied.
        const lowers = state.layers.length ? await this.overlayLowers(state.layers) : undefined;
        if (lowers) {
          try {
            const mount = await prepareOverlay(lowers, this.workRoot);
            this.mounts.push(mount);
            return mount.mergedDir;
          } catch {
            // e.g. too many layers for one mount's option string: apply them into a directory instead
          }
        }
        return this.layers.materialize(state.layers, this.workRoot);
      })();
      this.rootfs.set(state.key, p);
    }
    return p;
  }

  /** The build's .dockerignore (also read by the build checks). */
  ignoreMatcher(): Promise<PatternMatcher> {
    this.matcher ??= loadMatcher(this.request.contextDir, this.request.dockerfile.path);
    return this.matcher;
  }

  /** Whether a context path is the cache dir or below it (computed once: it is asked per file). */
  private inCacheDir(rel: string): boolean {
    this.cacheDirTest ??= cacheDirFilter(this.request.contextDir, this.layers.cache.dir);
    return this.cacheDirTest(rel);
  }

  /** The build context after .dockerignore (and `<Dockerfile>.dockerignore`). */
  async contextTree(): Promise<SourceTree> {
    const m = await this.ignoreMatcher();
    // With `!` exceptions, an excluded directory is in the context only when something below it is
    // included — known only from a walk (BuildKit sends what its walker includes, parents with it).
    if (m.hasExclusions) {
      this.contextIncluded ??= walkContext(this.request.contextDir, m).then((entries) => includeList(entries.map((e) => e.path)));
      const included = await this.contextIncluded;
      return dirTree(this.request.contextDir, { describe: 'the build context', include: (rel) => !this.inCacheDir(rel) && included(rel) });
    }
    return dirTree(this.request.contextDir, {
      describe: 'the build context', include: (rel) => !this.inCacheDir(rel) && !m.matches(rel),
    });
  }

  /** The build context after .dockerignore as a directory of its own, for `RUN --mount=type=bind` (once per build). */
  contextCopy(): Promise<string> {
    this.contextDirCopy ??= (async () => linkedCopy(this.request.contextDir, await this.ignoreMatcher(), this.layers.cache.dir, await mkdtemp(join(this.workRoot, 'context-'))))();
    return this.contextDirCopy;
  }

  /**
   * How a step uses the step cache: `fresh` (its stage is in `--no-cache-filter`), whether the
   * images hold its layer (else it is written uncompressed: it never leaves the cache dir), whether
   * a RUN step may run after it (a RUN from it on in its stage, or in a later stage), and, where a
   * RUN of its own stage follows, what to start on a miss: what that RUN needs (see `prepareRun`).
   */
  layerOptions({ plan, stage, step, state }: { plan: BuildPlan; stage: PlannedStage; step: EvaluatedStep; state: StageState }): LayerOptions {
    const at = stage.instructions.indexOf(step.source); // -1: an ONBUILD trigger
    const runInStage = at === -1 || stage.instructions.slice(at).some((i) => i.kind === 'RUN');
    const runFollows = runInStage || plan.stages.some((s) => s.index > stage.index && s.instructions.some((i) => i.kind === 'RUN'));
    const staging = this.staging;
    return {
      fresh: this.fresh(stage), exported: !this.inImages || this.inImages.has(stageId(plan, stage)), runFollows,
      ...(runInStage ? { onMiss: () => this.prepareRun(state) } : {}),
      ...(staging?.follows(plan, stage) ? { growing: (blob: GrowingBlob) => staging.growing(plan, stage, blob) } : {}),
    };
  }

  /**
   * At a miss that a RUN of the same stage follows (every step after a miss misses too), what that
   * RUN needs starts beside the missed step's work (its COPY hashing and writing): the isolation's
   * probes (a runtime's version, a trial mount: forks worth 10-100 ms), and the layers the stage
   * has so far, into the extracted-layer store for the RUN's overlay. Their blobs are in hand by
   * then or on their way (the step reads their headers); a failure here is the RUN's to meet and
   * report.
   */
  private prepareRun(state: StageState): void {
    this.isolation().catch(() => undefined);
    if (state.writing || state.layers.length === 0 || this.preparing.has(state.key)) return;
    // A stopped build waits for this at close: it stops before the next layer, not after the last.
    const p = this.overlayLowers(state.layers, this.signal).then(() => undefined, () => undefined);
    this.preparing.set(state.key, p);
  }

  /** Whether `stage`'s steps must run again (`--no-cache-filter`, by stage name or index). */
  fresh(stage: { name?: string; index: number }): boolean {
    const filter = this.request.noCacheFilter;
    return filter.length > 0 && (filter.includes(stage.name ?? '') || filter.includes(String(stage.index)));
  }

  /** How RUN steps are isolated: chosen at the first RUN, once per build, and said in one line. */
  isolation(): Promise<IsolationChoice> {
    this.isolationChoice ??= (async () => {
      const choice = chooseIsolation(this.request.isolation, await prepareIsolation(this.request.isolation, { runtime: this.request.runtime }));
      this.progress.info(`RUN isolation: ${choice.mode} (${choice.reason})`);
      return choice;
    })();
    return this.isolationChoice;
  }

  /** Whether RUN roots are overlay mounts; never in ptrace mode, which is for hosts without mounts. */
  overlay(): Promise<boolean> {
    this.overlayOk ??= this.request.isolation === 'ptrace' ? Promise.resolve(false) : overlaySupported(this.workRoot);
    return this.overlayOk;
  }

  /** The layers extracted as overlay lower dirs (LayerStore.lowerDirs), or undefined where overlay cannot mount. */
  overlayLowers(layers: LayerRef[], signal?: AbortSignal): Promise<string[] | undefined> {
    return this.layers.lowerDirs(layers, signal, this.overlay());
  }

  /**
   * A plain-directory rootfs holding `layers`, made from one a RUN step left behind holding a prefix
   * of them (the layers after it, e.g. of a COPY, applied on top), so the next RUN on that chain
   * does not apply every layer again; each left-behind dir is taken once. Undefined when none fits.
   */
  async takeRootfs(layers: LayerRef[]): Promise<string | undefined> {
    for (let k = layers.length; k > 0; k--) {
      const id = layers.slice(0, k).map((l) => l.diffID).join(',');
      const dir = this.plainRoots.get(id);
      if (!dir) continue;
      this.plainRoots.delete(id);
      try {
        await this.layers.applyOnto(dir, layers.slice(k));
      } catch (e) {
        await rm(dir, { recursive: true, force: true });
        throw e;
      }
      return dir;
    }
    return undefined;
  }

  /** Offers `dir` (holding the layers with these diffIDs) to the next step; false when one is there. */
  handOnRootfs(diffIDs: string[], dir: string): boolean {
    const id = diffIDs.join(',');
    if (this.plainRoots.has(id) || this.signal.aborted) return false;
    this.plainRoots.set(id, dir);
    return true;
  }

  secret(id: string): Buffer | undefined {
    return this.request.secrets.find((s) => s.id === id)?.value;
  }

  /**
   * Where RUN steps get their rootfs and scratch files. Under ptrace a step's processes reach these
   * host paths themselves, as the step's user, so for a non-root USER every directory above them
   * must be searchable: the build dir when it is (0711, listing nothing), else a dir of this build
   * under the system temp dir (a cache dir in a 0700 home, e.g. GitLab's /root), removed with it.
   */
  runRoot(): Promise<string> {
    this.runRootDir ??= (async () => {
      if ((await this.isolation()).mode !== 'ptrace') return this.workRoot;
      if (searchableByAll(dirname(this.workRoot))) {
        await chmod(this.workRoot, 0o711);
        return this.workRoot;
      }
      const runs = join(tmpdir(), 'slipway-runs');
      await mkdir(runs, { recursive: true, mode: 0o711 });
      await sweepAbandonedBuilds(runs);
      const dir = makeBuildDir(runs);
      await chmod(dir, 0o711);
      this.extraDirs.push(dir);
      return dir;
    })();
    return this.runRootDir;
  }

  /** What earlier builds learned of the context's files (`hashes.json`, `sums.json` in the cache dir). */
  fileHashes(): ContextHashes {
    this.contextHashes ??= new ContextHashes(this.layers.cache.dir);
    return this.contextHashes;
  }

  /** Removes the per-build scratch directory (rootfs copies, downloads). */
  async close(): Promise<void> {
    // What this build hashed serves the next one; a failure to write it costs only speed.
    await this.contextHashes?.save().catch(() => undefined);
    // A probe still under way (the build failed before its first RUN) mounts inside the work dir.
    await Promise.allSettled([...this.rootfs.values(), this.overlayOk, this.isolationChoice, ...this.preparing.values()]);
    // Unmount before anything is removed: removing through a mounted overlay would write to it.
    for (const m of this.mounts) await m.cleanup().catch(() => undefined);
    // Never throw over the build's own error: a leftover is only disk space in tmp/.
    for (const dir of [...(this.buildDir ? [this.buildDir] : []), ...this.extraDirs]) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    // The shared parent of such dirs goes once it is empty (another build may still be using it).
    for (const dir of this.extraDirs) await rmdir(dirname(dir)).catch(() => undefined);
  }
}

/** Whether every directory from `/` down to `dir` lets any user search it (o+x). */
function searchableByAll(dir: string): boolean {
  for (let d = dir; ; d = dirname(d)) {
    if (((statSync(d, { throwIfNoEntry: false })?.mode ?? 0) & 0o001) === 0) return false;
    if (d === dirname(d)) return true;
  }
}

/** The request's layer compression as the layer writer takes it, its level resolved. */
function layerCompressionOf(request: BuildRequest): Required<WriteCompression> {
  const c = request.compression;
  const type: Compression = c?.type === 'uncompressed' ? 'none' : c?.type ?? 'gzip';
  return { type, level: type === 'none' ? 0 : c?.level ?? defaultLevel(type), force: c?.force ?? false };
}
