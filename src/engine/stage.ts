// Executes one planned stage for one platform: resolves its base (scratch, another stage, or an
// image — never extracted unless a step needs its files), then each instruction in order, taking
// a step's result from the cache when its key is known, else running it and recording it.
import { chmod, chown, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { cacheKey } from '../cache/index.ts';
import {
  DockerfileError, parseOnbuildTrigger, resolveStageRef, StageEvaluator, type BuildPlan, type EvaluatedStep, type ExpandedInstruction, type Mount, type PlannedStage,
} from '../dockerfile/index.ts';
import { UserError } from '../errors.ts';
import {
  checksumEntries, clampLayer, diffOverlayUpper, diffTree, dirTree, fetchGit, fetchRemote, fileTree, parseGitSource, planCopy, prepareOverlay, recordTree, lookupExecUser, resolveChown, resolveInRoot,
  writeLayer, type CopyPlan, type IdentityFiles, type LayerEntry, type SourceTree,
} from '../fs/index.ts';
import { formatPlatform, type ContainerConfig, type HistoryEntry, type ImageConfig, type Platform } from '../oci/index.ts';
import { defaultPath, runStep, type StepMount } from '../runtime/index.ts';
import { applyInstruction, scratchConfig } from './config.ts';
import type { BuildSession } from './session.ts';
import type { LayerRef } from './layers.ts';

/** The filesystem and config of a stage after some of its steps. */
export interface StageState {
  platform: Platform;
  config: ImageConfig;
  layers: LayerRef[];
  /** Cache key of this state: the base's identity and every step so far. */
  key: string;
}

const buildkitComment = 'buildkit.dockerfile.v0';

/** Everything one step works with. */
interface StepContext {
  session: BuildSession;
  plan: BuildPlan;
  stage: PlannedStage;
  /** The stage's state before this step. */
  state: StageState;
  step: EvaluatedStep;
  /** Proxy build args: RUN sees them, the image and the cache key never do. */
  proxyEnv: Map<string, string>;
}

function stageLabel(stage: PlannedStage): string {
  return stage.name ?? `stage-${stage.index}`;
}

/** Runs `stage` of `plan`; the session memoises stages so each runs once per platform. */
export async function executeStage(session: BuildSession, plan: BuildPlan, stage: PlannedStage): Promise<StageState> {
  let state = await baseState(session, plan, stage);
  const evaluator = new StageEvaluator(plan, stage, {
    env: state.config.config?.Env, workingDir: state.config.config?.WorkingDir, shell: state.config.config?.Shell, os: stage.platform.os,
  });
  const instructions = [...onbuildTriggers(state.config, plan.definition.file), ...stage.instructions];
  if (state.config.config?.OnBuild) state = { ...state, config: { ...state.config, config: { ...state.config.config, OnBuild: undefined } } };
  // Numbered as BuildKit shows them: FROM and the instructions that touch the filesystem.
  const shown = (kind: string) => kind === 'RUN' || kind === 'COPY' || kind === 'ADD' || kind === 'WORKDIR';
  const total = 1 + instructions.filter((ins) => shown(ins.kind)).length;
  let number = 1;
  let cmdSet = false;
  for (let i = 0; i < instructions.length; i++) {
    const step = evaluator.step(instructions[i]);
    if (shown(instructions[i].kind)) number++;
    const title = `[${session.multiPlatform ? formatPlatform(stage.platform) + ' ' : ''}${stageLabel(stage)} ${number}/${total}] ${oneLine(step.source.node.original)}`;
    state = await executeStep({ session, plan, stage, state, step, proxyEnv: evaluator.proxyEnv }, title, cmdSet);
    if (step.expanded.kind === 'CMD') cmdSet = true;
  }
  return state;
}

/** An instruction as buildx shows it in progress: its source text, continuations folded, shortened. */
function oneLine(text: string): string {
  const folded = text.replace(/\\?\r?\n\s*/g, ' ').replace(/\s+/g, ' ').trim();
  return folded.length > 120 ? folded.slice(0, 117) + '...' : folded;
}

/** ONBUILD triggers of the base image run first, as BuildKit runs them, and are not inherited. */
function onbuildTriggers(config: ImageConfig, file: string) {
  return (config.config?.OnBuild ?? []).map((t) => parseOnbuildTrigger(t, file));
}

async function baseState(session: BuildSession, plan: BuildPlan, stage: PlannedStage): Promise<StageState> {
  const base = stage.base;
  if (base.kind === 'scratch') {
    return { platform: stage.platform, config: scratchConfig(stage.platform), layers: [], key: cacheKey({ scratch: formatPlatform(stage.platform) }) };
  }
  if (base.kind === 'stage') {
    const parent = await session.stage(plan, plan.allStages[base.index]);
    return { ...parent, platform: stage.platform };
  }
  const image = await session.resolveImage(base.ref, stage.platform);
  const config: ImageConfig = structuredClone(image.config);
  config.history ??= [];
  // BuildKit gives a base image without PATH the default one (not on Windows).
  const env = config.config?.Env ?? [];
  if (stage.platform.os !== 'windows' && !env.some((e) => e.startsWith('PATH='))) config.config = { ...config.config, Env: [`PATH=${defaultPath}`, ...env] };
  const layers = image.manifest.layers.map((d, i) => ({ descriptor: d, diffID: image.config.rootfs.diff_ids[i], repository: image.repository }));
  if (layers.some((l) => !l.diffID)) throw new UserError(`image ${base.ref}: its config lists fewer diff_ids than its manifest has layers`);
  return { platform: stage.platform, config, layers, key: cacheKey({ image: image.manifestDigest }) };
}

/**
 * `created` of a history entry: SOURCE_DATE_EPOCH when set; else when the step first ran (from its
 * cache record) — for a metadata step, the entry before it — so a fully cached rebuild gives the
 * same image digest, as BuildKit's does.
 */
function historyCreated(session: BuildSession, state: StageState, stepCreated: string | undefined): string {
  if (session.sourceDateEpoch !== undefined) return session.created;
  return stepCreated ?? state.config.history?.at(-1)?.created ?? session.created;
}

function withStep(state: StageState, step: EvaluatedStep, key: string, session: BuildSession, layer?: LayerRef, config?: ContainerConfig, created?: string): StageState {
  const history: HistoryEntry = { created: historyCreated(session, state, created), created_by: step.createdBy, comment: buildkitComment };
  if (!layer) history.empty_layer = true;
  const next: ImageConfig = {
    ...state.config,
    config: config ?? state.config.config,
    rootfs: { type: 'layers', diff_ids: layer ? [...state.config.rootfs.diff_ids, layer.diffID] : state.config.rootfs.diff_ids },
    history: step.createdBy === undefined ? state.config.history : [...(state.config.history ?? []), history],
  };
  return { platform: state.platform, config: next, layers: layer ? [...state.layers, layer] : state.layers, key };
}

async function executeStep(ctx: StepContext, title: string, cmdSet: boolean): Promise<StageState> {
  const { session, state, step } = ctx;
  const ins = step.expanded;
  if (ins.kind === 'WORKDIR') {
    const config = applyInstruction(state.config.config ?? {}, ins, cmdSet);
    const made = await workdirLayer(ctx, ins.path);
    return withStep(state, step, made.key, session, made.layer, config, made.created);
  }
  if (ins.kind !== 'RUN' && ins.kind !== 'COPY' && ins.kind !== 'ADD') {
    const key = cacheKey({ parent: state.key, step: ins, createdBy: step.createdBy ?? null });
    const next = withStep(state, step, key, session, undefined, applyInstruction(state.config.config ?? {}, ins, cmdSet));
    if (ins.kind === 'MAINTAINER') next.config.author = ins.maintainer;
    return next;
  }
  const reporter = session.progress.step(title);
  try {
    const result = ins.kind === 'RUN'
      ? await runInstruction(ctx, ins, reporter.log.bind(reporter))
      : await copyInstruction(ctx, ins);
    if (result.cached) {
      reporter.cached();
      session.stats.cached++;
    } else {
      reporter.done();
      session.stats.run++;
    }
    return withStep(state, step, result.key, session, result.layer, undefined, result.created);
  } catch (e) {
    reporter.failed(e);
    throw located(e, ctx);
  }
}

/** A step's UserError says where the step is in the Dockerfile, as the frontend's errors do. */
function located(e: unknown, { plan, step }: StepContext): unknown {
  if (!(e instanceof UserError) || e instanceof DockerfileError) return e;
  const where = `${plan.definition.file}:${step.source.range.startLine}`;
  if (e.message.startsWith(where)) return e;
  return new UserError(`${where}: ${e.message}`, { hint: e.hint, cause: e });
}

interface StepResult { key: string; layer?: LayerRef; cached: boolean; created?: string }

/**
 * What a step made: layer entries; `keep`, to call with the written layer's diffID (a RUN keeps its
 * overlay upper dir as that layer's extracted form); and a cleanup once the layer is written.
 */
interface MadeEntries { entries: LayerEntry[]; keep?: (diffID: string) => Promise<void>; cleanup?: () => Promise<void> }

/**
 * Looks the key up in the cache, else makes the layer (once per build for equal keys) and records
 * it. Layers are cached as made, without SOURCE_DATE_EPOCH; a build with an epoch uses a variant
 * re-timed from that one (cached too), so changing the epoch re-runs no step.
 */
async function cachedLayer(session: BuildSession, stepKey: string, make: () => Promise<MadeEntries>): Promise<StepResult> {
  // The media type flavour changes the bytes of the layers the step makes.
  const key = cacheKey({ step: stepKey, dockerMediaTypes: session.dockerMediaTypes });
  return retimed(session, await cachedRaw(session, key, make));
}

async function cachedRaw(session: BuildSession, key: string, make: () => Promise<MadeEntries>): Promise<StepResult> {
  if (!session.noCache) {
    const hit = await session.lookupStep(key);
    if (hit) {
      const { record, repository } = hit;
      return { key, cached: true, created: record.created, layer: record.layer ? { descriptor: descriptorOf(record.layer), diffID: record.layer.diffID, repository } : undefined };
    }
  }
  const shared = session.once(key, async (): Promise<StepResult> => {
    const made = await make();
    try {
      const created = session.created;
      // A step that changed nothing still makes a layer (an empty tar), as BuildKit does.
      const written = await writeLayer(made.entries, { dir: session.layers.blobsDir, mediaTypes: session.dockerMediaTypes ? 'docker' : 'oci' });
      const layer: LayerRef = { descriptor: { mediaType: written.mediaType, digest: written.digest, size: written.size }, diffID: written.diffID };
      await made.keep?.(written.diffID);
      await session.recordStep(key, { layer: { ...layer.descriptor, diffID: layer.diffID }, created });
      return { key, cached: false, layer, created };
    } finally {
      await made.cleanup?.();
    }
  });
  // Another platform already made this very step in this build: for this one it is a cache hit.
  return shared.first ? shared.value : { ...(await shared.value), cached: true };
}

/** With SOURCE_DATE_EPOCH: the step's layer with every mtime clamped to it (cached by key + epoch). */
async function retimed(session: BuildSession, raw: StepResult): Promise<StepResult> {
  const epoch = session.sourceDateEpoch;
  if (epoch === undefined || !raw.layer) return raw;
  const variantKey = cacheKey({ step: raw.key, sourceDateEpoch: epoch });
  const hit = session.noCache ? undefined : await session.lookupStep(variantKey);
  if (hit?.record.layer) {
    session.variants.set(variantKey, raw.key);
    return { ...raw, layer: { descriptor: descriptorOf(hit.record.layer), diffID: hit.record.layer.diffID, repository: hit.repository } };
  }
  const source = raw.layer;
  const made = await session.once(variantKey, async () => {
    const written = await clampLayer(await session.layers.local(source), epoch, { dir: session.layers.blobsDir, mediaTypes: session.dockerMediaTypes ? 'docker' : 'oci' });
    await session.recordStep(variantKey, { layer: { mediaType: written.mediaType, digest: written.digest, size: written.size, diffID: written.diffID }, created: raw.created });
    return written;
  }).value;
  session.variants.set(variantKey, raw.key);
  return { ...raw, layer: { descriptor: { mediaType: made.mediaType, digest: made.digest, size: made.size }, diffID: made.diffID } };
}

function descriptorOf(d: { mediaType: string; digest: string; size: number }) {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size };
}

// --- WORKDIR ----------------------------------------------------------------------------------

/**
 * WORKDIR creates its directory (and missing parents, 0755, owned by USER) as BuildKit's mkdir does;
 * on a directory that exists the layer is empty, as BuildKit's is. What exists is read from the
 * layers' headers (fetching a base still in its registry) only when the step is not cached.
 */
async function workdirLayer(ctx: StepContext, path: string): Promise<StepResult> {
  const { session, state } = ctx;
  const user = state.config.config?.User ?? '';
  const key = cacheKey({ parent: state.key, op: 'WORKDIR', path, user });
  if (path === '/') return { key, cached: false };
  const result = await cachedLayer(session, key, async () => {
    const view = await session.layers.view(state.layers);
    const parts = path.split('/').filter(Boolean);
    const missing: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!view.stat(p)) missing.push(p);
    }
    const owner = user && missing.length ? resolveChown(user, view.identity()) : { uid: 0, gid: 0 };
    const mtime = session.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
    return { entries: missing.map((p) => ({ path: p, type: 'dir' as const, mode: 0o755, uid: owner.uid, gid: owner.gid, mtime })) };
  });
  return { ...result, cached: false };
}

// --- COPY / ADD -------------------------------------------------------------------------------

type CopyIns = Extract<ExpandedInstruction, { kind: 'COPY' | 'ADD' }>;

async function identityOf(session: BuildSession, state: StageState): Promise<IdentityFiles> {
  return (await session.layers.view(state.layers)).identity();
}

/**
 * planCopy's options shared by every source of one COPY/ADD. `bare`: without anything read from the
 * destination's layers (and without --chown, whose names may need them) — for the cache key.
 */
async function copyOptions(session: BuildSession, state: StageState, ins: CopyIns, opts: { bare?: boolean } = {}) {
  const chownNeedsNames = ins.chown !== undefined && !/^\d+(:\d+)?$/.test(ins.chown);
  const identity = chownNeedsNames && !opts.bare ? await identityOf(session, state) : undefined;
  // Without --link the copy lands on the existing tree (a /tmp keeps its 1777, a home dir its
  // owner), so the layers' headers are read — fetching a base still in its registry.
  const view = !ins.link && state.layers.length > 0 && !opts.bare ? await session.layers.view(state.layers) : undefined;
  return {
    instruction: ins.kind, dest: ins.dest, workdir: state.config.config?.WorkingDir || '/', chown: opts.bare && chownNeedsNames ? undefined : ins.chown, chmod: ins.chmod, link: ins.link,
    parents: ins.parents, exclude: ins.exclude, identity, mtime: session.sourceDateEpoch ?? Math.floor(Date.now() / 1000),
    existing: view ? async (p: string) => view.stat(p) : undefined,
  };
}

/**
 * COPY --from another stage or an image: the source's state key already names its content, so the
 * key needs no checksum of the files — a cached step reads nothing and extracts nothing.
 */
async function copyFromState(ctx: StepContext, ins: CopyIns, from: string): Promise<StepResult> {
  const { session, plan, state } = ctx;
  const source = await sourceState(session, plan, state, from);
  const key = cacheKey({
    parent: state.key, op: ins.kind, from: source.key, sources: ins.sources, dest: ins.dest, workdir: state.config.config?.WorkingDir || '/',
    chown: ins.chown ?? null, chmod: ins.chmod ?? null, link: ins.link, parents: ins.parents, exclude: ins.exclude,
  });
  return cachedLayer(session, key, async () => {
    const tree = await copySourceTree(session, plan, state, from);
    const planned = await planCopy({ ...(await copyOptions(session, state, ins)), sources: ins.sources, from: tree });
    return { entries: planned.entries, cleanup: planned.cleanup };
  });
}

async function copyInstruction(ctx: StepContext, ins: CopyIns): Promise<StepResult> {
  const { session, plan, state } = ctx;
  if (ins.from !== undefined && ins.contents.length === 0) return copyFromState(ctx, ins, ins.from);
  const mtime = session.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
  const workdir = state.config.config?.WorkingDir || '/';
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // The sources, each with the planCopy arguments that select it.
    const sources: Array<{ from: SourceTree; sources: string[]; dest?: string; unpackArchives?: boolean }> = [];
    for (const c of ins.contents) {
      const name = posix.basename(c.path) || 'heredoc';
      const data = Buffer.from(c.data);
      sources.push({ sources: [name], from: fileTree(name, { content: { buffer: data }, size: data.length, mode: 0o644, mtime }, `heredoc ${c.path}`) });
    }
    const gitSources = ins.kind === 'ADD' ? ins.sources.filter((s) => parseGitSource(s)) : [];
    for (const source of gitSources) {
      // The repository's files go into the destination directory, as BuildKit's git source does.
      const checkout = await fetchGit(parseGitSource(source)!, { dir: session.workRoot, keepGitDir: ins.keepGitDir });
      cleanups.push(checkout.cleanup);
      sources.push({ sources: ['.'], from: checkout.tree, dest: ins.dest.endsWith('/') ? ins.dest : ins.dest + '/' });
    }
    const urls = ins.kind === 'ADD' ? ins.sources.filter((s) => /^https?:\/\//i.test(s) && !gitSources.includes(s)) : [];
    for (const url of urls) {
      const remote = await fetchRemote(url, { checksum: ins.checksum, fallbackMtime: mtime, dir: session.workRoot });
      cleanups.push(remote.cleanup);
      sources.push({ sources: [remote.name], from: remote.tree });
    }
    const local = ins.sources.filter((s) => !urls.includes(s) && !gitSources.includes(s));
    if (local.length) sources.push({ sources: local, from: await copySourceTree(session, plan, state, ins.from), unpackArchives: ins.kind === 'ADD' });

    const planAll = async (options: Awaited<ReturnType<typeof copyOptions>>): Promise<LayerEntry[]> => {
      const entries: LayerEntry[] = [];
      for (const src of sources) {
        const planned: CopyPlan = await planCopy({ ...options, ...src, dest: src.dest ?? options.dest });
        cleanups.push(planned.cleanup);
        entries.push(...planned.entries);
      }
      return entries;
    };
    // The key needs only the sources: what the destination already holds (existing directories'
    // metadata, the users and groups of --chown) follows from the parent state, which is in the key.
    // So a cached step reads nothing of the base image; only a miss plans against it.
    const bare = { ...(await copyOptions(session, state, ins, { bare: true })) };
    const bareEntries = await planAll(bare);
    const key = cacheKey({
      parent: state.key, op: ins.kind, dest: ins.dest, workdir, chown: ins.chown ?? null, chmod: ins.chmod ?? null, link: ins.link, parents: ins.parents,
      exclude: ins.exclude, checksum: await checksumEntries(bareEntries),
    });
    return await cachedLayer(session, key, async () => {
      const full = await copyOptions(session, state, ins);
      return { entries: full.existing || full.identity ? await planAll(full) : bareEntries };
    });
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}

/** Where COPY takes its sources from: the context, another stage's filesystem, or an image's. */
async function copySourceTree(session: BuildSession, plan: BuildPlan, state: StageState, from: string | undefined): Promise<SourceTree> {
  if (from === undefined) return session.contextTree();
  const dir = await session.rootfsOf(await sourceState(session, plan, state, from));
  return dirTree(dir, { describe: resolveStageRef(plan.definition, from).kind === 'image' ? `image ${from}` : `stage ${from}` });
}

// --- RUN --------------------------------------------------------------------------------------

type RunIns = Extract<ExpandedInstruction, { kind: 'RUN' }>;

/** Keeps the last lines of a step's output for the error message. */
function tailKeeper(max = 20) {
  let lines: string[] = [];
  let partial = '';
  return {
    push(chunk: Buffer) {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines = [...lines, ...parts].slice(-max);
    },
    text: () => [...lines, partial].filter((l) => l !== '').slice(-max).join('\n'),
  };
}

async function runInstruction(ctx: StepContext, ins: RunIns, log: (b: Buffer) => void): Promise<StepResult> {
  const { session, stage, state, step } = ctx;
  if (ins.security === 'insecure') {
    throw new UserError('RUN --security=insecure needs the security.insecure entitlement, which slipway does not grant', { hint: 'run the step without --security=insecure' });
  }
  const cfg = state.config.config ?? {};
  const mountKeys = [];
  for (const m of ins.mounts) mountKeys.push(await mountKey(ctx, m));
  const key = cacheKey({
    parent: state.key, op: 'RUN', args: ins.args, env: step.env, user: cfg.User ?? '', workdir: cfg.WorkingDir || '/', network: ins.network,
    security: ins.security, mounts: mountKeys, inlineFiles: ins.inlineFiles, platform: formatPlatform(stage.platform),
  });
  return cachedLayer(session, key, () => runAndDiff(ctx, ins, log));
}

/** What a mount contributes to the RUN's cache key: its options, and the content of a bound source. */
async function mountKey({ session, plan, state }: StepContext, m: Mount): Promise<unknown> {
  const opts = { type: m.type, target: m.target, source: m.source, from: m.from ?? null, readOnly: m.readOnly, id: m.id, mode: m.mode, uid: m.uid, gid: m.gid, env: m.env ?? null };
  if (m.type !== 'bind') return opts;
  const tree = await copySourceTree(session, plan, state, m.from || undefined);
  const planned = await planCopy({ sources: [m.source || '.'], dest: '/m/', from: tree, mtime: 0 });
  try {
    return { ...opts, checksum: await checksumEntries(planned.entries) };
  } finally {
    await planned.cleanup();
  }
}

async function resolveUser(rootfs: string, user: string | undefined): Promise<{ uid: number; gid: number; additionalGids: number[] }> {
  if (!user) return { uid: 0, gid: 0, additionalGids: [] }; // BuildKit: no USER → 0:0, no lookups
  const read = async (p: string) => readFile(join(rootfs, await resolveInRoot(rootfs, p, true)), 'utf8').catch(() => undefined);
  return lookupExecUser(user, { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
}

async function runAndDiff(ctx: StepContext, ins: RunIns, log: (b: Buffer) => void): Promise<MadeEntries> {
  const { session, stage, state, step, proxyEnv } = ctx;
  const runtime = session.runtime();
  const lowers = (await session.overlay()) ? await session.layers.lowerDirs(state.layers) : undefined;
  const scratch = await mkdtemp(join(session.workRoot, 'step-'));
  let cleanupRootfs: () => Promise<void>;
  let rootfs: string;
  let diff: () => Promise<LayerEntry[]>;
  let keep: MadeEntries['keep'];
  if (lowers) {
    const mount = await prepareOverlay(lowers, session.workRoot);
    rootfs = mount.mergedDir;
    cleanupRootfs = mount.cleanup;
    diff = () => diffOverlayUpper(mount.upperDir, lowers);
    // The cached layer is the upper as-is (any SOURCE_DATE_EPOCH is applied to a variant of it).
    keep = (diffID) => mount.keepUpper(session.layers.snapshotsDir, diffID);
  } else {
    rootfs = await session.layers.materialize(state.layers, session.workRoot);
    const before = await recordTree(rootfs);
    cleanupRootfs = () => rm(rootfs, { recursive: true, force: true });
    diff = () => diffTree(before);
  }
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await cleanupRootfs();
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    const cfg = state.config.config ?? {};
    const user = await resolveUser(rootfs, cfg.User);
    const env = [...(step.env ?? [])];
    const mounts: StepMount[] = [];
    // Cache mounts are held only while the container runs; locked ids are taken in one sorted
    // order, so two steps never wait for each other.
    const releases: (() => void)[] = [];
    const locked = [...new Set(ins.mounts.filter((m) => m.type === 'cache' && m.sharing === 'locked').map((m) => m.id || m.target))].sort();
    for (const id of locked) releases.push((await session.useCacheMount(id, 'locked')).release);
    cleanups.push(async () => { for (const r of releases.splice(0)) r(); });
    for (const m of ins.mounts) {
      const made = await stepMount(ctx, m, scratch, env, releases, cleanups);
      if (made) mounts.push(made);
    }
    for (const f of ins.inlineFiles) {
      const host = join(scratch, `inline-${mounts.length}`);
      await writeFile(host, f.data, { mode: f.mode });
      mounts.push({ type: 'bind', source: host, target: f.path, readonly: true });
    }
    const tail = tailKeeper();
    const sink = (b: Buffer) => { tail.push(b); log(b); };
    const network = ins.network === 'default' ? session.network : ins.network;
    const { exitCode } = await runStep({
      runtime, rootfs, args: ins.args, env: [...env, ...[...proxyEnv].map(([k, v]) => `${k}=${v}`)],
      cwd: cfg.WorkingDir || '/', user, network, mounts, platform: stage.platform, stdout: sink, stderr: sink, workDir: session.workRoot, signal: session.signal,
    }).finally(() => { for (const r of releases.splice(0)) r(); });
    if (exitCode !== 0) {
      const shown = ins.args.join(' ');
      const output = tail.text();
      throw new UserError(`RUN failed: process "${shown}" did not complete successfully: exit code: ${exitCode}${output ? '\n--- last output ---\n' + output : ''}`, {
        hint: 'the command failed inside the build container; its output is above',
      });
    }
    // The entries point into the upper dir (or rootfs): it stays until the layer is written.
    const entries = await diff();
    return { entries, keep, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** One RUN --mount as the runtime takes it; secrets are written to a private file, never the rootfs. */
async function stepMount({ session, plan, state }: StepContext, m: Mount, scratch: string, env: string[], releases: (() => void)[], cleanups: (() => Promise<void>)[]): Promise<StepMount | undefined> {
  switch (m.type) {
    case 'bind': {
      const root = m.from ? await session.rootfsOf(await sourceState(session, plan, state, m.from)) : await session.contextCopy();
      const source = join(root, await resolveInRoot(root, m.source || '/', true));
      if (m.readOnly) return { type: 'bind', source, target: m.target, readonly: true };
      // rw: the step may write, but as in BuildKit its writes are thrown away — into a private copy.
      return { type: 'bind', source: await writableCopy(source, scratch, cleanups), target: m.target, readonly: false };
    }
    case 'cache': {
      if (m.from || (m.source && m.source !== '/')) {
        throw new UserError('RUN --mount=type=cache with from= or source= is not supported by slipway', { hint: 'drop from=/source=; the cache starts empty and persists between builds' });
      }
      const id = m.id || m.target;
      if (m.sharing !== 'locked') { // locked ids are already held by the step
        const use = await session.useCacheMount(id, m.sharing);
        releases.push(use.release);
        if (m.sharing === 'private' && use.busy) return { type: 'cache', source: await mkdtemp(join(scratch, 'cache-private-')), target: m.target };
      }
      const { dir, created } = await session.cacheMountDir(id);
      if (created) {
        await chmod(dir, m.mode);
        await chown(dir, m.uid, m.gid).catch(() => undefined);
      }
      return { type: 'cache', source: dir, target: m.target };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, size: m.size };
    case 'secret': {
      const secret = session.secret(m.id);
      if (!secret) {
        if (m.required) throw new UserError(`secret "${m.id}" is required by RUN --mount=type=secret but was not given`, { hint: `pass --secret id=${m.id},src=FILE (or the secrets input)` });
        return undefined;
      }
      if (m.env) env.push(`${m.env}=${secret.toString('utf8')}`);
      if (m.env && !m.target) return undefined;
      const file = join(scratch, `secret-${m.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
      await writeFile(file, secret, { mode: 0o600 });
      return { type: 'secret', source: file, target: m.target || `/run/secrets/${m.id}`, mode: m.mode, uid: m.uid, gid: m.gid };
    }
    case 'ssh':
      throw new UserError('RUN --mount=type=ssh is not supported by slipway', { hint: 'use a secret mount with a deploy key, or fetch what you need before the build' });
  }
}

/** A writable view of `source` whose writes never reach it: an overlay where one mounts, else a copy. */
async function writableCopy(source: string, scratch: string, cleanups: (() => Promise<void>)[]): Promise<string> {
  const isDir = (await stat(source).catch(() => undefined))?.isDirectory() ?? true;
  if (isDir) {
    try {
      const mount = await prepareOverlay([source], join(scratch, 'rw-mounts'));
      cleanups.push(mount.cleanup);
      return mount.mergedDir;
    } catch {
      // no overlay here (rootless): fall through to a copy
    }
  }
  const copy = join(scratch, `rw-${cleanups.length}-${Math.random().toString(36).slice(2)}`);
  await cp(source, copy, { recursive: true, verbatimSymlinks: true }).catch(async () => mkdir(copy, { recursive: true }));
  return copy;
}

async function sourceState(session: BuildSession, plan: BuildPlan, state: StageState, from: string): Promise<StageState> {
  const ref = resolveStageRef(plan.definition, from);
  if (ref.kind === 'stage') return session.stage(plan, plan.allStages[ref.index]);
  if (ref.kind === 'image') return session.imageState(ref.ref, state.platform);
  return { platform: state.platform, config: scratchConfig(state.platform), layers: [], key: cacheKey({ scratch: formatPlatform(state.platform) }) };
}

