// Choosing how RUN steps are isolated, from most to least isolated (DESIGN.md, "RUN isolation"):
// an OCI runtime as root (namespaces, mounts) → a rootless runtime in a user namespace → ptrace
// (proot) with no privileges at all. `auto` takes the first that works here; each probe runs once.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { hostRun } from '../fs/index.ts';
import { checkRootless, detectRuntime, type RuntimeInfo, type RuntimeName } from './detect.ts';
import { probePtrace } from './ptrace/index.ts';

export type IsolationMode = 'runc' | 'crun' | 'rootless' | 'ptrace';

export interface IsolationChoice {
  mode: IsolationMode;
  /** The OCI runtime for runc, crun and rootless (pass it to runStep; rootless: also `rootless: true`). */
  runtime?: RuntimeInfo;
  /** One line: why this mode. */
  reason: string;
}

export interface ChooseOptions {
  /** A runtime name or path for the runtime modes (as detectRuntime takes it). */
  runtime?: string;
  searchPath?: string[];
  /** `crun --version`'s output where the caller has asked it (prepareIsolation); else it is asked here, with a spawn. */
  crunVersion?: string;
}

interface Probe { ok: boolean; why: string }

let rootProbe: Probe | undefined;
let userNsProbe: Probe | undefined;

const rootCan: Probe = { ok: true, why: 'root can mount and create namespaces' };
/** unshare's arguments for the namespaces a root-mode step gets. */
const stepNamespaces = ['--mount', '--uts', '--ipc', '--pid', '--fork'];

/** Two empty dirs, `a` and `b`, for a bind-mount probe; `remove` deletes them (nothing may be mounted on `b` then). */
function probeDirs(): { a: string; b: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-probe-'));
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  const remove = () => rmSync(dir, { recursive: true, force: true });
  try {
    mkdirSync(a);
    mkdirSync(b);
  } catch (e) {
    remove();
    throw e;
  }
  return { a, b, remove };
}

/** Whether we can do what root mode does: bind-mount, and create mount/pid/uts/ipc namespaces. */
export function probeRootMounts(fresh = false): Probe {
  if (rootProbe && !fresh) return rootProbe;
  if (process.geteuid?.() !== 0) return (rootProbe = { ok: false, why: 'not running as root' });
  const { a, b, remove } = probeDirs();
  let mounted = false;
  try {
    // Where root may do both (the usual case), one process says so: a bind mount inside new
    // namespaces, gone with them. Only a failure asks each part apart, to say which one is missing.
    const both = spawnSync('unshare', [...stepNamespaces, 'mount', '--bind', a, b], { stdio: 'ignore', timeout: 10_000 });
    if (both.status === 0) return (rootProbe = rootCan);
    const m = spawnSync('mount', ['--bind', a, b], { encoding: 'utf8', timeout: 10_000 });
    if (m.status !== 0) {
      rootProbe = { ok: false, why: `root cannot mount here (${(m.stderr || m.error?.message || '').trim().split('\n')[0] || `mount exit status ${m.status}`}; no CAP_SYS_ADMIN?)` };
      return rootProbe;
    }
    mounted = spawnSync('umount', [b], { stdio: 'ignore', timeout: 10_000 }).status !== 0;
    const u = spawnSync('unshare', [...stepNamespaces, 'true'], { encoding: 'utf8', timeout: 10_000 });
    rootProbe = u.status === 0
      ? rootCan
      : { ok: false, why: `root cannot create namespaces here (${(u.stderr || u.error?.message || '').trim().split('\n')[0] || `unshare exit status ${u.status}`})` };
    return rootProbe;
  } finally {
    if (mounted) spawnSync('umount', ['-l', b], { stdio: 'ignore', timeout: 10_000 });
    remove();
  }
}

/** Whether this process can create a user namespace (what rootless runc needs). */
export function probeUserNamespaces(fresh = false): Probe {
  if (userNsProbe && !fresh) return userNsProbe;
  try {
    checkRootless();
    userNsProbe = { ok: true, why: 'user namespaces are available' };
  } catch (err) {
    userNsProbe = { ok: false, why: (err as Error).message.replace(/^cannot run RUN steps: not root, and /, '') };
  }
  return userNsProbe;
}

/**
 * What `chooseIsolation(requested, options)` would spawn processes to learn, asked through a
 * resident shell instead (a spawn from this process costs 7-10 ms of its main thread: the fork
 * copies its page tables): the root probe's usual answer (a failure is left to probeRootMounts,
 * which says what is missing) and, for auto with no runtime named, `crun --version`. Returns the
 * options to choose with.
 */
export async function prepareIsolation(requested: 'auto' | IsolationMode, options: ChooseOptions = {}): Promise<ChooseOptions> {
  if (process.geteuid?.() !== 0 || requested === 'rootless' || requested === 'ptrace') return options;
  const crunVersion = async () => {
    const crun = requested === 'auto' && !options.runtime ? crunPath(options) : undefined;
    if (crun === undefined) return undefined;
    try {
      return (await hostRun([crun, '--version'])).stdout;
    } catch {
      return undefined;
    }
  };
  const [version] = await Promise.all([crunVersion(), probeRootMountsAhead()]);
  return version === undefined ? options : { ...options, crunVersion: version };
}

/** probeRootMounts' usual answer, through a resident shell. */
async function probeRootMountsAhead(): Promise<void> {
  if (rootProbe) return;
  let dirs: ReturnType<typeof probeDirs> | undefined;
  try {
    dirs = probeDirs();
    const r = await hostRun(['unshare', ...stepNamespaces, 'mount', '--bind', dirs.a, dirs.b]);
    if (r.code === 0) rootProbe ??= rootCan;
  } catch { /* the probe asks again */ } finally {
    dirs?.remove();
  }
}

/** The crun a search finds, if any. */
function crunPath(options: ChooseOptions): string | undefined {
  try {
    return detectRuntime('crun', options.searchPath).path;
  } catch {
    return undefined;
  }
}

/** Whether the crun a search would find reports version 1.8 or later (`crun --version`). */
function crunIsRecent(options: ChooseOptions): boolean {
  let out = options.crunVersion;
  if (out === undefined) {
    const crun = crunPath(options);
    if (crun === undefined) return false;
    out = spawnSync(crun, ['--version'], { encoding: 'utf8', timeout: 5_000 }).stdout ?? '';
  }
  const m = /crun version (\d+)\.(\d+)/.exec(out);
  return Boolean(m && (Number(m[1]) > 1 || (Number(m[1]) === 1 && Number(m[2]) >= 8)));
}

function findRuntime(options: ChooseOptions, order?: readonly RuntimeName[]): { runtime?: RuntimeInfo; why: string } {
  try {
    return { runtime: detectRuntime(options.runtime, options.searchPath, order), why: '' };
  } catch (err) {
    return { why: (err as Error).message.replace(/^this build has RUN steps but /, '') };
  }
}

const waysOut = 'run on a privileged runner or with sudo (root with mounts: `--isolation runc`), ' +
  'or allow user namespaces (`sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000`) for `--isolation rootless`, ' +
  'or install proot (`apt-get install proot`) for `--isolation ptrace`';

/**
 * The isolation for this build's RUN steps. `auto` tries root runtime → rootless runtime → ptrace and
 * says why it took the one it did; a named mode is checked and a UserError says what is missing.
 */
export function chooseIsolation(requested: 'auto' | IsolationMode = 'auto', options: ChooseOptions = {}): IsolationChoice {
  const root = process.geteuid?.() === 0;
  const runtimeMode = (preferred?: string): IsolationChoice | string => {
    const probe = probeRootMounts();
    if (!probe.ok) return probe.why;
    // As root crun comes first where both are installed: it starts a step in about 25 ms less
    // than runc (21 trivial RUN steps: 1.42 against 1.93 s), for the same layers. Only a crun as
    // new as the one the tests run (1.8); an older one (Ubuntu 22.04 has 0.17) comes after runc.
    const named = preferred ?? options.runtime;
    const order: RuntimeName[] | undefined = named ? undefined : crunIsRecent(options) ? ['crun', 'runc'] : ['runc', 'crun'];
    const { runtime, why } = findRuntime({ ...options, runtime: named }, order);
    if (!runtime) return why;
    return { mode: runtime.name, runtime, reason: `${runtime.name} as root: ${probe.why}` };
  };
  const rootlessMode = (): IsolationChoice | string => {
    if (root) return 'slipway runs as root (rootless mode is for other users)';
    const probe = probeUserNamespaces();
    if (!probe.ok) return probe.why;
    const { runtime, why } = findRuntime(options);
    if (!runtime) return why;
    return { mode: 'rootless', runtime, reason: `rootless ${runtime.name}: ${probe.why}` };
  };
  const ptraceMode = (): IsolationChoice | string => {
    const probe = probePtrace();
    if (!probe.ok) return probe.reason!;
    return { mode: 'ptrace', reason: `ptrace: RUN steps run under ${probe.proot}` };
  };

  if (requested === 'runc' || requested === 'crun') {
    const r = runtimeMode(options.runtime ?? requested);
    if (typeof r === 'string') {
      throw new UserError(`cannot use --isolation ${requested}: ${r}`, { hint: `run on a privileged runner or with sudo, or use --isolation auto (${waysOut})` });
    }
    return r;
  }
  if (requested === 'rootless') {
    const r = rootlessMode();
    if (typeof r === 'string') throw new UserError(`cannot use --isolation rootless: ${r}`, { hint: 'enable user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000`, or use --isolation auto' });
    return r;
  }
  if (requested === 'ptrace') {
    const r = ptraceMode();
    if (typeof r === 'string') throw new UserError(`cannot use --isolation ptrace: ${r}`, { hint: probePtrace().hint ?? 'apt-get install proot' });
    return r;
  }

  const why: string[] = [];
  for (const [name, attempt] of [['runtime as root', () => runtimeMode()], ['rootless runtime', rootlessMode], ['ptrace', ptraceMode]] as const) {
    const r = attempt();
    if (typeof r !== 'string') return why.length ? { ...r, reason: `${r.reason} (${why.join('; ')})` } : r;
    why.push(`${name}: ${r}`);
  }
  throw new UserError(`cannot run RUN steps here: ${why.join('; ')}`, { hint: waysOut });
}
