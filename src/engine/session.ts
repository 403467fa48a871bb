// The state one build shares across stages and platforms: the cache, the registry, the runtime,
// memoised stages, images and rootfs directories, and the per-build scratch directory.
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { copyFile, link, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import type { CacheRecord, LocalCache } from '../cache/index.ts';
import { loadMatcher, walkContext, type BuildPlan, type PatternMatcher, type PlannedStage } from '../dockerfile/index.ts';
import { UserError } from '../errors.ts';
import { dirTree, overlaySupported, prepareOverlay, type OverlayMount, type SourceTree } from '../fs/index.ts';
import { formatPlatform, type Platform } from '../oci/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { detectRuntime, type RuntimeInfo } from '../runtime/index.ts';
import { LayerStore } from './layers.ts';
import type { RegistryPort, ResolvedImage } from './ports.ts';
import type { RemoteRecords } from './registry-cache.ts';
import type { Progress } from './progress.ts';
import { executeStage, type StageState } from './stage.ts';
import { cacheKey } from '../cache/index.ts';

const execFileAsync = promisify(execFile);

export class BuildSession {
  readonly request: BuildRequest;
  readonly progress: Progress;
  readonly layers: LayerStore;
  readonly workRoot: string;
  readonly multiPlatform: boolean;
  /** `created` for history entries and the config: SOURCE_DATE_EPOCH, or the build's start. */
  readonly created: string;
  readonly stats = { cached: 0, run: 0 };
  /** Aborted at the first failure, so steps of other stages and platforms stop too. */
  private readonly aborter = new AbortController();
  /** The failure that aborted the build (later ones are its consequences). */
  firstError: unknown;
  private readonly registry: RegistryPort | undefined;
  private readonly stages = new Map<string, Promise<StageState>>();
  private readonly images = new Map<string, Promise<ResolvedImage>>();
  private readonly rootfs = new Map<string, Promise<string>>();
  private readonly inflight = new Map<string, Promise<unknown>>();
  private readonly mounts: OverlayMount[] = [];
  private matcher: Promise<PatternMatcher> | undefined;
  private contextDirCopy: Promise<string> | undefined;
  private readonly cacheMountUsers = new Map<string, { count: number; queue: Promise<void> }>();
  private runtimeInfo: RuntimeInfo | undefined;
  private overlayOk: Promise<boolean> | undefined;

  private constructor(request: BuildRequest, cache: LocalCache, registry: RegistryPort | undefined, progress: Progress, workRoot: string) {
    this.request = request;
    this.progress = progress;
    this.registry = registry;
    this.layers = new LayerStore(cache, registry);
    this.workRoot = workRoot;
    this.multiPlatform = request.platforms.length > 1;
    const epoch = request.sourceDateEpoch;
    this.created = new Date(epoch !== undefined ? epoch * 1000 : Date.now()).toISOString().replace(/\.000Z$/, 'Z');
  }

  static async open(request: BuildRequest, cache: LocalCache, registry: RegistryPort | undefined, progress: Progress): Promise<BuildSession> {
    const tmp = join(cache.dir, 'tmp');
    await mkdir(tmp, { recursive: true });
    await sweepAbandonedBuilds(tmp);
    const workRoot = await mkdtemp(join(tmp, 'build-'));
    await writeFile(join(workRoot, ownerFile), `${hostname()} ${process.pid}\n`);
    return new BuildSession(request, cache, registry, progress, workRoot);
  }

  get signal(): AbortSignal { return this.aborter.signal; }

  abort(reason: unknown): void {
    if (this.aborter.signal.aborted) return;
    this.firstError = reason;
    this.aborter.abort(reason);
  }

  get noCache(): boolean { return this.request.noCache; }
  get sourceDateEpoch(): number | undefined { return this.request.sourceDateEpoch; }
  get dockerMediaTypes(): boolean { return this.request.dockerMediaTypes; }
  get network(): 'default' | 'none' | 'host' { return this.request.network; }
  get contextDir(): string { return this.request.contextDir; }

  /** Runs `stage` of `plan` once per platform, however many stages ask for it. */
  stage(plan: BuildPlan, stage: PlannedStage): Promise<StageState> {
    const id = `${formatPlatform(plan.targetPlatform)}|${stage.index}`;
    let p = this.stages.get(id);
    if (!p) {
      p = executeStage(this, plan, stage);
      this.stages.set(id, p);
    }
    return p;
  }

  /**
   * Runs `make` once for equal keys (e.g. a `--platform=$BUILDPLATFORM` stage serving every target);
   * `first` tells the caller whether it was the one that ran it.
   */
  once<T>(key: string, make: () => Promise<T>): { value: Promise<T>; first: boolean } {
    const p = this.inflight.get(key) as Promise<T> | undefined;
    if (p) return { value: p, first: false };
    const value = make();
    this.inflight.set(key, value);
    return { value, first: true };
  }

  resolveImage(ref: string, platform: Platform): Promise<ResolvedImage> {
    const id = `${ref}|${formatPlatform(platform)}`;
    let p = this.images.get(id);
    if (!p) {
      const registry = this.registry;
      if (!registry) throw new UserError(`this build needs the image ${ref}, but no registry access was configured`);
      const reporter = this.progress.step(`[internal] load metadata for ${ref}${this.multiPlatform ? ` (${formatPlatform(platform)})` : ''}`);
      p = registry.resolve(ref, platform);
      p.then(() => reporter.done(), (e: unknown) => reporter.failed(e));
      this.images.set(id, p);
    }
    return p;
  }

  /** An image (for COPY --from=image or a mount) as a stage state. */
  async imageState(ref: string, platform: Platform): Promise<StageState> {
    const image = await this.resolveImage(ref, platform);
    const layers = image.manifest.layers.map((d, i) => ({ descriptor: d, diffID: image.config.rootfs.diff_ids[i], repository: image.repository }));
    return { platform, config: image.config, layers, key: cacheKey({ image: image.manifestDigest }) };
  }

  /** The state's files in a directory (extracted once per build), for COPY --from and bind mounts. */
  rootfsOf(state: StageState): Promise<string> {
    let p = this.rootfs.get(state.key);
    if (!p) {
      p = (async () => {
        // Where overlay mounts, the extracted layers (a RUN's are already there) are stacked, not copied.
        const lowers = state.layers.length && (await this.overlay()) ? await this.layers.lowerDirs(state.layers) : undefined;
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

  /** The build context after .dockerignore (and `<Dockerfile>.dockerignore`). */
  async contextTree(): Promise<SourceTree> {
    this.matcher ??= loadMatcher(this.request.contextDir, this.request.dockerfile.path);
    const m = await this.matcher;
    return dirTree(this.request.contextDir, { describe: 'the build context', include: (rel) => !m.matches(rel) || m.exceptionCouldMatchBelow(rel) });
  }

  /**
   * The build context after .dockerignore as a directory of its own, for `RUN --mount=type=bind`:
   * hard links where the filesystem allows (else copies), made once per build. Never the host
   * context itself, so ignored files stay unseen and a step cannot change the user's files.
   */
  contextCopy(): Promise<string> {
    this.contextDirCopy ??= (async () => {
      this.matcher ??= loadMatcher(this.request.contextDir, this.request.dockerfile.path);
      const entries = await walkContext(this.request.contextDir, await this.matcher);
      const dir = await mkdtemp(join(this.workRoot, 'context-'));
      for (const e of entries) {
        const from = join(this.request.contextDir, e.path);
        const to = join(dir, e.path);
        await mkdir(dirname(to), { recursive: true });
        if (e.stat.isDirectory()) await mkdir(to, { recursive: true, mode: e.stat.mode & 0o7777 });
        else if (e.stat.isSymbolicLink()) await symlink(await readlink(from), to);
        else if (e.stat.isFile()) await link(from, to).catch(() => copyFile(from, to));
      }
      return dir;
    })();
    return this.contextDirCopy;
  }

  runtime(): RuntimeInfo {
    this.runtimeInfo ??= detectRuntime(this.request.runtime);
    return this.runtimeInfo;
  }

  overlay(): Promise<boolean> {
    this.overlayOk ??= overlaySupported(this.workRoot);
    return this.overlayOk;
  }

  secret(id: string): Buffer | undefined {
    return this.request.secrets.find((s) => s.id === id)?.value;
  }

  /**
   * Host directory behind `RUN --mount=type=cache,id=…`; it persists with the cache dir. Named by a
   * hash of the id, so no id (`..`, `a/b`) can reach outside `mounts/`. `created` tells the caller
   * to set the mount's mode and owner, which BuildKit applies only when it creates the directory.
   */
  async cacheMountDir(id: string): Promise<{ dir: string; created: boolean }> {
    const dir = join(this.layers.cache.dir, 'mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
    const created = (await mkdir(dir, { recursive: true })) !== undefined;
    return { dir, created };
  }

  /**
   * Takes the cache mount `id` for one step: `locked` waits for other users to finish, `private`
   * gets a throwaway directory while another step has it, `shared` never waits. Returns the release.
   */
  async useCacheMount(id: string, sharing: 'shared' | 'private' | 'locked'): Promise<{ busy: boolean; release: () => void }> {
    const users = this.cacheMountUsers.get(id) ?? { count: 0, queue: Promise.resolve() };
    this.cacheMountUsers.set(id, users);
    const busy = users.count > 0;
    if (sharing === 'locked') {
      let release!: () => void;
      const turn = users.queue;
      users.queue = new Promise<void>((resolve) => { release = resolve; });
      await turn;
      users.count++;
      return { busy: false, release: () => { users.count--; release(); } };
    }
    users.count++;
    return { busy, release: () => { users.count--; } };
  }

  /** Cached steps from `--cache-from` registries (set by build() before the stages run). */
  remoteRecords: RemoteRecords = new Map();
  /** Every step record this build used or made, for `--cache-to`. */
  readonly usedRecords = new Map<string, CacheRecord>();
  /** SOURCE_DATE_EPOCH variant key → the key of the layer it was re-timed from. */
  readonly variants = new Map<string, string>();

  /**
   * The cached result of a step: from the local cache, else from a `--cache-from` registry. A
   * registry record's blob stays there (`repository`) until something needs its bytes: a push
   * mounts it, a file output or a RUN on top fetches it.
   */
  async lookupStep(key: string): Promise<{ record: CacheRecord; repository?: string } | undefined> {
    const local = await this.layers.cache.lookup(key);
    if (local) {
      this.usedRecords.set(key, local);
      return { record: local };
    }
    const remote = this.remoteRecords.get(key);
    if (!remote) return undefined;
    this.usedRecords.set(key, remote.record);
    return remote;
  }

  async recordStep(key: string, record: CacheRecord): Promise<void> {
    if (record.layer) await this.layers.cache.record(key, record);
    else await this.layers.cache.index.set(key, record);
    this.usedRecords.set(key, record);
  }

  /** Removes the per-build scratch directory (rootfs copies, downloads). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.rootfs.values()]);
    // Unmount before anything is removed: removing through a mounted overlay would write to it.
    for (const m of this.mounts) await m.cleanup().catch(() => undefined);
    // Never throw over the build's own error: a leftover is only disk space in tmp/.
    await rm(this.workRoot, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Who a build dir belongs to: `host pid`, so a later build can tell an abandoned one. */
const ownerFile = '.owner';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes build dirs whose process is gone (killed with SIGKILL, or the machine went down): their
 * overlay mounts first, deepest first, then the files. A dir of another host is left alone for a
 * day, in case the cache dir is shared.
 */
async function sweepAbandonedBuilds(tmp: string): Promise<void> {
  for (const name of await readdir(tmp).catch(() => [] as string[])) {
    if (!name.startsWith('build-')) continue;
    const dir = join(tmp, name);
    const owner = (await readFile(join(dir, ownerFile), 'utf8').catch(() => '')).trim().split(' ');
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    const mine = owner[0] === hostname();
    if (owner.length === 2 && (mine ? alive(Number(owner[1])) : age < 86_400_000)) continue;
    if (owner.length !== 2 && age < 3_600_000) continue; // being created right now
    const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => '')).split('\n')
      .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
      .filter((m): m is string => Boolean(m) && (m === dir || m.startsWith(dir + '/')))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await execFileAsync('umount', ['-l', m]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
