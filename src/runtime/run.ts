// Runs one RUN step: writes a bundle (config.json + the files we bind in) to a private temp dir,
// creates the mountpoints the step needs in the rootfs, runs `runc|crun run`, and then removes the
// mountpoints it had to create so nothing of ours lands in the layer diff.
//
// What stays in the rootfs afterwards: what the step wrote, plus its cwd when that was missing (as in
// BuildKit). Mountpoints we created (/proc, /dev, /sys, /etc/resolv.conf, /etc/hosts, mount targets,
// and missing parents of these) are removed when the step left them empty, and the existing parent
// directories get their times back. On overlayfs those parents were copied up into the upper dir with
// unchanged metadata: the differ must skip directories identical to the lower one (BuildKit does too).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, copyFileSync, readFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { isAbsolute, join, posix, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { UserError } from '../errors.ts';
import { hostStart } from '../fs/index.ts';
import type { Platform } from '../oci/index.ts';
import { checkRootless, type RuntimeInfo } from './detect.ts';
import { ensureEmulation } from './emulation.ts';
import { ensureInRoot, hostPathInRoot, removeStubs, sealStubs, type Stubs } from './rootpath.ts';
import type { CdiEdits } from './cdi.ts';
import { insecureSpec, refusePrivileged } from './privileged.ts';
import { buildSpec, type SpecMount } from './spec.ts';

export type StepMount =
  | { type: 'bind'; source: string; target: string; readonly?: boolean }
  /** A host directory that persists between steps and builds (RUN --mount=type=cache). */
  | { type: 'cache'; source: string; target: string }
  | { type: 'tmpfs'; target: string; size?: number }
  /** `source` is a host file holding the secret; it is copied to a private dir, never into the rootfs. */
  | { type: 'secret'; source: string; target: string; mode?: number; uid?: number; gid?: number };

export type OutputSink = Writable | ((chunk: Buffer) => void);

/** One step, whichever way it is isolated. */
export interface StepOptions {
  /** Existing root filesystem directory (the merged overlay dir); the caller owns it. */
  rootfs: string;
  /** The rootfs is a mount with nodev already (the overlay steps run on): no nodev bind of it is made. */
  rootfsNodev?: boolean;
  /** The final argv, e.g. ['/bin/sh', '-c', 'echo hi']. */
  args: string[];
  env: string[];
  /** Working directory inside the rootfs; created (root-owned, 0755) when missing, and kept. */
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  /**
   * 'none': a new network namespace with only loopback. 'host' and 'default': the host's network
   * (a sandbox network would need CNI/slirp; sharing the host's is what a bridge-less build can do).
   */
  network: 'default' | 'none' | 'host';
  hostname?: string;
  /** `--add-host` entries written into the step's /etc/hosts. */
  extraHosts?: ReadonlyArray<{ host: string; ip: string }>;
  mounts?: StepMount[];
  /** When foreign, QEMU's binfmt handler must be there (see ensureEmulation); nothing goes in the spec. */
  platform?: Platform;
  stdout?: OutputSink;
  stderr?: OutputSink;
  signal?: AbortSignal;
  /** Where bundles and runtime state go (default: the OS temp dir). */
  workDir?: string;
  /** The host resolv.conf to give networked steps (default /etc/resolv.conf). */
  resolvConf?: string;
  /** RUN --security=insecure: run privileged, as BuildKit's insecure mode (runc/crun as root only). */
  insecure?: boolean;
  /** What the step's CDI devices add (RUN --device; runc/crun as root only). */
  cdi?: CdiEdits;
}

/** The step's env with the CDI env on top: a variable it sets replaces the one of that name. */
function withCdiEnv(env: string[], cdi: CdiEdits | undefined): string[] {
  if (!cdi?.env.length) return env;
  const key = (e: string) => e.slice(0, e.indexOf('=') + 1);
  const out = [...env];
  for (const e of cdi.env) {
    const i = out.findIndex((x) => key(x) === key(e));
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

/** A step through runc or crun. */
export interface RunStepOptions extends StepOptions {
  runtime: RuntimeInfo;
  /** Default: rootless when not running as root. */
  rootless?: boolean;
}

export interface RunStepResult {
  exitCode: number;
}

export function emit(sink: OutputSink | undefined, chunk: Buffer): void {
  if (!sink || chunk.length === 0) return;
  if (typeof sink === 'function') sink(chunk);
  else sink.write(chunk);
}

/** The checks every isolation makes before a step starts. */
export function validateStep(o: StepOptions): void {
  if (o.args.length === 0) throw new UserError('RUN has no command to run');
  if (!posix.isAbsolute(o.cwd)) throw new UserError(`working directory "${o.cwd}" must be an absolute path`);
  if (!isAbsolute(o.rootfs) || !statSync(o.rootfs, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`rootfs ${o.rootfs} must be an existing directory given by absolute path`);
  for (const id of [o.user.uid, o.user.gid, ...(o.user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw new UserError(`invalid user or group id ${id}`);
  }
  for (const m of o.mounts ?? []) {
    if (!posix.isAbsolute(m.target)) throw new UserError(`RUN --mount target "${m.target}" must be an absolute path`);
    if ((m.type === 'bind' || m.type === 'secret') && !existsSync(m.source)) throw new UserError(`RUN --mount=type=${m.type} source ${m.source} does not exist`);
  }
}

/** The step's /etc/hosts: localhost, the sandbox's hostname, then `--add-host` entries in order. */
export function hostsFile(hostname: string, extra: ReadonlyArray<{ host: string; ip: string }> = []): string {
  return `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n` + extra.map((e) => `${e.ip}\t${e.host}\n`).join('');
}

/**
 * The resolv.conf and hosts a networked step sees, written into `bundle` and given mountpoints in
 * the rootfs; returns each host file with where it goes.
 */
export function networkFiles(o: StepOptions, bundle: string, hostname: string, stubs: Stubs): Array<[file: string, target: string]> {
  const resolv = join(bundle, 'resolv.conf');
  if (existsSync(o.resolvConf ?? '/etc/resolv.conf')) copyFileSync(o.resolvConf ?? '/etc/resolv.conf', resolv);
  else writeFileSync(resolv, '');
  writeFileSync(join(bundle, 'hosts'), hostsFile(hostname, o.extraHosts));
  const files: Array<[string, string]> = [[resolv, '/etc/resolv.conf'], [join(bundle, 'hosts'), '/etc/hosts']];
  for (const [file, target] of files) {
    chmodSync(file, 0o644);
    ensureInRoot(o.rootfs, target, 'file', stubs);
  }
  return files;
}

/** Runs the step and resolves with its exit code (128+n when killed by signal n). */
export async function runStep(options: RunStepOptions): Promise<RunStepResult> {
  const o = { ...options, rootfs: resolve(options.rootfs) };
  o.signal?.throwIfAborted();
  validateStep(o);
  const rootless = o.rootless ?? process.getuid?.() !== 0;
  if (rootless) {
    checkRootless();
    if (o.runtime.name === 'crun' && hybridCgroupsWithV2Controllers()) {
      throw new UserError('crun cannot run rootless on this host: it has hybrid cgroups (v1 plus v2 with controllers), which crun refuses', { hint: 'install runc (apt-get install runc) and use it, or run as root' });
    }
    if (o.user.uid !== 0 || o.user.gid !== 0) {
      throw new UserError(`rootless RUN steps can only run as root inside the container (asked for ${o.user.uid}:${o.user.gid})`, { hint: 'run slipway as root to use USER in RUN steps' });
    }
    refusePrivileged('rootless', { insecure: o.insecure, devices: Boolean(o.cdi) });
  }
  if (o.platform) ensureEmulation(o.platform);
  const hostname = o.hostname ?? 'buildkitsandbox';
  const networked = o.network !== 'none';

  const bundle = mkdtempSync(join(o.workDir ?? tmpdir(), 'slipway-run-'));
  const stubs: Stubs = { created: [], parents: new Map() };
  const id = `slipway-${randomBytes(8).toString('hex')}`;
  const state = join(bundle, 'state');
  let started = false;
  let nodevRoot: string | undefined;
  try {
    // The working directory is part of the step's result (BuildKit creates it too).
    ensureInRoot(o.rootfs, o.cwd, 'dir');

    const mounts: SpecMount[] = [];
    for (const dir of ['/proc', '/dev', '/sys']) ensureInRoot(o.rootfs, dir, 'dir', stubs);
    if (networked) {
      for (const [file, target] of networkFiles(o, bundle, hostname, stubs)) {
        mounts.push({ destination: target, type: 'bind', source: file, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
      }
    }
    let secretN = 0;
    for (const m of o.mounts ?? []) {
      switch (m.type) {
        case 'bind': {
          const isDir = statSync(m.source).isDirectory();
          ensureInRoot(o.rootfs, m.target, isDir ? 'dir' : 'file', stubs);
          mounts.push({ destination: m.target, type: 'bind', source: m.source, options: ['rbind', m.readonly === false ? 'rw' : 'ro'] });
          break;
        }
        case 'cache':
          mkdirSync(m.source, { recursive: true });
          ensureInRoot(o.rootfs, m.target, 'dir', stubs);
          mounts.push({ destination: m.target, type: 'bind', source: m.source, options: ['rbind', 'rw'] });
          break;
        case 'tmpfs':
          ensureInRoot(o.rootfs, m.target, 'dir', stubs);
          mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', ...(m.size ? [`size=${m.size}`] : [])] });
          break;
        case 'secret': {
          const dir = join(bundle, 'secrets');
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          const copy = join(dir, String(secretN++));
          copyFileSync(m.source, copy);
          chmodSync(copy, m.mode ?? 0o400);
          if (!rootless) chownSync(copy, m.uid ?? 0, m.gid ?? 0);
          ensureInRoot(o.rootfs, m.target, 'file', stubs);
          mounts.push({ destination: m.target, type: 'bind', source: copy, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
          break;
        }
      }
    }
    for (const m of o.cdi?.mounts ?? []) {
      ensureInRoot(o.rootfs, m.containerPath, statSync(m.hostPath, { throwIfNoEntry: false })?.isDirectory() ? 'dir' : 'file', stubs);
      mounts.push({ destination: m.containerPath, type: m.type, source: m.hostPath, options: m.options });
    }
    // runc resolves mount destinations inside the rootfs itself; give it the path we created.
    for (const m of mounts) m.destination = '/' + hostPathInRoot(o.rootfs, m.destination).slice(o.rootfs.length).replace(/^\/+/, '');
    sealStubs(stubs);

    // Root mode: run on a private nodev bind of the rootfs, so a device node shipped inside the image
    // opens nothing even where the runtime cannot use the device cgroup (crun on hybrid cgroups).
    let specRoot = o.rootfs;
    if (!rootless && !o.rootfsNodev) {
      specRoot = join(bundle, 'rootfs');
      mkdirSync(specRoot);
      // One mount(8) call: util-linux does the bind, the propagation change and the nodev remount;
      // an insecure step may use every device, as in BuildKit: its rootfs keeps them.
      nodevRoot = specRoot; // unmounted at the end even if a later part of the call failed
      mountCommand(['--bind', '--make-private', ...(o.insecure ? [] : ['-o', 'nodev']), o.rootfs, specRoot]);
    }

    const spec = buildSpec({
      rootfs: specRoot, args: o.args, env: withCdiEnv(o.env, o.cdi), cwd: o.cwd, user: o.user, hostname,
      newNetworkNamespace: !networked, mounts, devices: o.cdi?.deviceNodes,
      ...(o.insecure ? { insecure: insecureSpec() } : {}),
      nofile: nofileLimit(),
      userNamespace: rootless ? { hostUid: process.getuid!(), hostGid: process.getgid!() } : undefined,
    });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));

    started = true;
    const [command, args] = runtimeCommand(o.runtime, state, ['run', '--bundle', bundle, id], rootless);
    const stop = () => spawnSync(...runtimeCommand(o.runtime, state, ['kill', id, 'KILL'], rootless), { stdio: 'ignore', timeout: 10_000 });
    const exitCode = await runRuntime([command, ...args], { o, bundle, stop });
    o.signal?.throwIfAborted();
    return { exitCode };
  } finally {
    // `run` removes its container when it ends; one left behind (killed, or it failed half-way) has state.
    if (started && existsSync(join(state, id))) spawnSync(...runtimeCommand(o.runtime, state, ['delete', '--force', id], rootless), { stdio: 'ignore', timeout: 30_000 });
    if (nodevRoot && spawnSync('umount', [nodevRoot], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', nodevRoot], { stdio: 'ignore' });
    removeStubs(stubs);
    rmSync(bundle, { recursive: true, force: true });
  }
}

/**
 * Runs the runtime's `run` to its end, on a resident shell (fs hostStart: no fork of this large
 * process) or spawned where none can run. Its output streams to the step's sinks; an abort kills
 * the container (`stop`), then the runtime.
 */
async function runRuntime(argv: string[], { o, bundle, stop }: { o: RunStepOptions; bundle: string; stop: () => void }): Promise<number> {
  const runtime = await hostStart(argv, { dir: bundle, stdout: (c) => emit(o.stdout, c), stderr: (c) => emit(o.stderr, c) });
  const onAbort = () => { stop(); runtime.kill(); };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) onAbort();
  try {
    return await runtime.exited;
  } catch (err) {
    throw new UserError(`cannot start ${o.runtime.name} (${o.runtime.path}): ${(err as Error).message}`);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Docker's 1048576 open files, or our own hard limit when we may not raise it (no CAP_SYS_RESOURCE,
 * as in some CI sandboxes): asking for more would make the runtime fail before the step starts.
 */
function nofileLimit(): number {
  const wanted = 1048576;
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const capEff = BigInt('0x' + (/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
    if (capEff & (1n << 24n)) return wanted;
    const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    return hard === undefined || hard === 'unlimited' ? wanted : Math.min(wanted, Number(hard));
  } catch {
    return wanted;
  }
}

function mountCommand(args: string[]): void {
  const r = spawnSync('mount', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

/**
 * The command line for one runtime call. crun (1.8) refuses hosts with hybrid v1/v2 cgroups whose v2
 * hierarchy holds controllers; in a private mount namespace we hide that v2 hierarchy, so crun sees
 * plain cgroup v1 and still enforces the device cgroup.
 */
function runtimeCommand(runtime: RuntimeInfo, state: string, args: string[], rootless: boolean): [string, string[]] {
  const argv = ['--root', state, ...args];
  if (runtime.name !== 'crun' || rootless || !hybridCgroupsWithV2Controllers()) return [runtime.path, argv];
  return ['unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c',
    'mount -t tmpfs -o size=4k slipway-hide-cgroup2 /sys/fs/cgroup/unified && exec "$@"', 'sh', runtime.path, ...argv]];
}

let hybridCgroups: boolean | undefined;
function hybridCgroupsWithV2Controllers(): boolean {
  if (hybridCgroups === undefined) {
    try {
      hybridCgroups = readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim() !== '';
    } catch {
      hybridCgroups = false;
    }
  }
  return hybridCgroups;
}

export function signalNumber(sig: NodeJS.Signals): number {
  return osConstants.signals[sig] ?? 9;
}
