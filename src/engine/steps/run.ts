// RUN: keyed by the expanded command, the env and args it sees, user, workdir, network, security
// mode, mounts, CDI devices and platform; the security.insecure and device entitlements are checked
// before the cache, as BuildKit checks them when it loads the build. On a miss it runs in the stage's
// rootfs (an overlay of the extracted layers where overlay mounts, else a plain directory) and the
// snapshot of what it changed becomes the layer.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExpandedInstruction } from '../../dockerfile/index.ts';
import { UserError } from '../../errors.ts';
import { diffTree, lookupExecUser, prepareOverlay, recordTree, resolveInRoot, type LayerEntry } from '../../fs/index.ts';
import { cdiEdits, defaultCdiSpecDirs, loadCdiRegistry, resolveCdiDevices, runStep, runStepPtrace, type CdiRegistry, type StepMount, type StepOptions } from '../../runtime/index.ts';
import type { BuildSession } from '../session.ts';
import { runKey } from '../keys.ts';
import type { MadeEntries, StepResult } from '../state.ts';
import type { WriteBehind } from '../write-behind.ts';
import { layerBehind, type StepContext } from './context.ts';
import { mountKey, stepMount, type MountScope } from './mounts.ts';

type RunIns = Extract<ExpandedInstruction, { kind: 'RUN' }>;

export async function runInstruction(ctx: StepContext, ins: RunIns, log: (b: Buffer) => void): Promise<StepResult> {
  const { session, stage, state, step } = ctx;
  // Entitlements are checked before the cache, as BuildKit checks them when it loads the build.
  if (ins.security === 'insecure' && !session.request.allow?.securityInsecure) {
    throw new UserError('security.insecure is not allowed', { hint: 'grant it with --allow security.insecure (action input allow: security.insecure); the step then runs privileged, under runc or crun as root' });
  }
  const devices = ins.devices ? { requested: ins.devices, resolved: resolveCdiDevices(cdiRegistry(session), ins.devices, session.request.allow?.devices, (m) => session.progress.warn(m)) } : undefined;
  const cfg = state.config.config ?? {};
  const mounts = [];
  for (const m of ins.mounts) mounts.push(await mountKey(ctx, m));
  const key = runKey({
    parent: state.key, instruction: ins, env: step.env, user: cfg.User ?? '', workdir: cfg.WorkingDir || '/', mounts, platform: stage.platform, extraHosts: session.request.extraHosts,
    hostname: sandboxHostname(ctx), devices,
  });
  // A step run on overlay hands its upper dir on as soon as it is made: the next RUN may start on
  // it while its layer is written. A cached step, or one run in a plain directory, waits for it.
  return layerBehind(ctx, key, (behind) => runAndDiff(ctx, { ins, log, devices: devices?.resolved ?? [], behind }), session.layerOptions(ctx));
}

const cdiRegistries = new WeakMap<BuildSession, CdiRegistry>();

/** The build's CDI devices, read once from the request's spec dirs (BuildKit's by default). */
function cdiRegistry(session: BuildSession): CdiRegistry {
  let reg = cdiRegistries.get(session);
  if (!reg) cdiRegistries.set(session, reg = loadCdiRegistry(session.request.cdiSpecDirs ?? defaultCdiSpecDirs));
  return reg;
}

/** `--build-arg BUILDKIT_SANDBOX_HOSTNAME=…`: the steps' hostname (default buildkitsandbox), as BuildKit's built-in arg. */
function sandboxHostname(ctx: StepContext): string | undefined {
  return ctx.session.request.buildArgs.BUILDKIT_SANDBOX_HOSTNAME || undefined;
}

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

async function resolveUser(rootfs: string, user: string | undefined): Promise<{ uid: number; gid: number; additionalGids: number[] }> {
  if (!user) return { uid: 0, gid: 0, additionalGids: [] }; // BuildKit: no USER → 0:0, no lookups
  const read = async (p: string) => readFile(join(rootfs, resolveInRoot(rootfs, p)), 'utf8').catch(() => undefined);
  return lookupExecUser(user, { passwd: await read('/etc/passwd'), group: await read('/etc/group') });
}

/**
 * The step's root filesystem, how to diff it after the step, and how to remove it (`handedOn`: the
 * removal once the layer is written, where that differs from `cleanup`, on failure).
 */
interface StepRoot { rootfs: string; nodev?: boolean; diff: () => Promise<LayerEntry[]>; keep?: MadeEntries['keep']; handedOn?: () => Promise<void>; cleanup: () => Promise<void>; lowers?: { dirs: string[]; unmount: () => Promise<void> } }

/** The lower dirs of a RUN on `state`: the previous RUN's (its upper on top) while its layer is written, else the layers extracted. */
async function lowerDirsOf({ session, state }: StepContext): Promise<string[] | undefined> {
  if (state.writing?.lowers) {
    await state.writing.unmounted;
    return state.writing.lowers;
  }
  return session.overlayLowers(state.layers);
}

async function stepRoot(ctx: StepContext, devices: 'nodev' | 'devices', behind: WriteBehind): Promise<StepRoot> {
  const { session, state } = ctx;
  const lowers = await lowerDirsOf(ctx);
  if (lowers) {
    const mount = await prepareOverlay(lowers, session.workRoot, { nodev: devices === 'nodev' });
    return {
      rootfs: mount.mergedDir,
      nodev: devices === 'nodev',
      diff: () => mount.diff(lowers),
      // The cached layer is the upper as-is (any SOURCE_DATE_EPOCH is applied to a variant of it);
      // it moves into the store, and the mount's dirs go, once the run of RUN steps ends.
      keep: async (diffID) => behind.defer(() => mount.keepUpper(session.layers.snapshotsDir, diffID)),
      handedOn: async () => behind.defer(mount.cleanup),
      cleanup: mount.cleanup,
      lowers: { dirs: [...lowers, mount.upperDir], unmount: mount.unmount },
    };
  }
  // A plain directory: the one the previous RUN of this chain left (it is this state's filesystem),
  // else the layers applied afresh. After the step it is handed on as the next state's.
  const rootfs = (await session.takeRootfs(state.layers)) ?? await session.layers.materialize(state.layers, await session.runRoot());
  const before = await recordTree(rootfs);
  let handedOn = false;
  return {
    rootfs,
    diff: () => diffTree(before),
    keep: async (diffID) => { handedOn = session.handOnRootfs([...state.layers.map((l) => l.diffID), diffID], rootfs); },
    cleanup: async () => { if (!handedOn) await rm(rootfs, { recursive: true, force: true }); },
  };
}

async function runAndDiff(ctx: StepContext, { ins, log, devices, behind }: { ins: RunIns; log: (b: Buffer) => void; devices: string[]; behind: WriteBehind }): Promise<MadeEntries> {
  const { session, stage, state, step, proxyEnv } = ctx;
  const isolation = await session.isolation();
  const runRoot = await session.runRoot();
  const scope: MountScope = { scratch: await mkdtemp(join(runRoot, 'step-')), env: [], releases: [], cleanups: [] };
  let root: StepRoot | undefined;
  const release = () => { for (const r of scope.releases.splice(0)) r(); };
  // The step's mounts and scratch files, then its root.
  const cleanupScope = async (): Promise<void> => {
    release();
    for (const c of scope.cleanups.reverse()) await c().catch(() => undefined);
    await rm(scope.scratch, { recursive: true, force: true });
  };
  const cleanup = async (): Promise<void> => {
    await cleanupScope();
    await root?.cleanup();
  };
  try {
    // An insecure step may use every device, as in BuildKit: its rootfs keeps them openable.
    root = await stepRoot(ctx, ins.security === 'insecure' ? 'devices' : 'nodev', behind);
    const cfg = state.config.config ?? {};
    const user = await resolveUser(root.rootfs, cfg.User);
    const mounts: StepMount[] = [];
    // Cache mounts are held only while the container runs; locked ids are taken in one sorted
    // order, so two steps never wait for each other.
    const locked = [...new Set(ins.mounts.filter((m) => m.type === 'cache' && m.sharing === 'locked').map((m) => m.id || m.target))].sort();
    for (const id of locked) scope.releases.push((await session.cacheMounts.use(id, 'locked')).release);
    for (const m of ins.mounts) {
      const made = await stepMount(ctx, m, scope);
      if (made) mounts.push(made);
    }
    for (const f of ins.inlineFiles) {
      const host = join(scope.scratch, `inline-${mounts.length}`);
      await writeFile(host, f.data, { mode: f.mode });
      mounts.push({ type: 'bind', source: host, target: f.path, readonly: true });
    }
    const tail = tailKeeper();
    const sink = (b: Buffer) => { tail.push(b); log(b); };
    const network = ins.network === 'default' ? session.request.network : ins.network;
    const env = [...(step.env ?? []), ...scope.env, ...[...proxyEnv].map(([k, v]) => `${k}=${v}`)];
    const options: StepOptions = {
      rootfs: root.rootfs, rootfsNodev: root.nodev, args: ins.args, env, cwd: cfg.WorkingDir || '/', user, network, mounts, platform: stage.platform, extraHosts: session.request.extraHosts,
      hostname: sandboxHostname(ctx), stdout: sink, stderr: sink, workDir: runRoot, signal: session.signal,
      ...(ins.security === 'insecure' ? { insecure: true } : {}), ...(devices.length ? { cdi: cdiEdits(cdiRegistry(session), devices, user) } : {}),
    };
    const running = isolation.mode === 'ptrace'
      ? runStepPtrace(options)
      : runStep({ ...options, runtime: isolation.runtime!, rootless: isolation.mode === 'rootless' });
    behind.started(); // the layers written behind this step go now
    const { exitCode } = await running.finally(release);
    if (exitCode !== 0) {
      const output = tail.text();
      throw new UserError(`RUN failed: process "${ins.args.join(' ')}" did not complete successfully: exit code: ${exitCode}${output ? '\n--- last output ---\n' + output : ''}`, {
        hint: 'the command failed inside the build container; its output is above',
      });
    }
    // The entries point into the upper dir (or rootfs): it stays until the layer is written.
    const entries = await root.diff();
    const { handedOn, lowers } = root;
    return {
      entries, keep: root.keep, cleanup: handedOn ? async () => { await cleanupScope(); await handedOn(); } : cleanup,
      ...(lowers ? { lowers: { dirs: lowers.dirs, unmounted: lowers.unmount() }, writeAfter: behind.nextStarted() } : {}),
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
