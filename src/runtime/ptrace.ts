// Runs one RUN step without any privilege beyond an ordinary container's: Debian's `proot` emulates
// the chroot and the bind mounts with ptrace on a plain-directory rootfs, and the step's processes run
// with real host ids, so chown, hardlinks and file modes land in the rootfs exactly as in runc mode.
//
// proot 5.1 (Debian 12) has no --kill-on-exit and returns the status of the *last* tracee to exit,
// not the step's. So we run it with `-v 1`, which notes every tracee's exit on proot's stderr; we take
// those notes (and the start-up notes) out of the step's stderr, read the main process's status from
// its note, and when the main process is gone we end the rest of the tree, as runc does when the
// container's init exits. The main process is proot's only real child (the rest descend from it).
//
// What differs from runc mode:
// - no namespaces: the step sees the container's /proc, /dev, /sys, hostname and network; network
//   'none' is refused; the hostname cannot be set (only /etc/hosts names it);
// - read-only binds are private copies (writes succeed and are thrown away, no EROFS);
// - tmpfs mounts are private empty directories (no size limit; writes are thrown away);
// - setuid bits do not raise privileges under ptrace; RLIMIT_NOFILE is inherited;
// - no device cgroup: isolation is the outer container's;
// - foreign platforms always go through `proot -q qemu-<arch>-static` (a binfmt handler does not work
//   under proot: it runs the foreign ELF itself and gets SIGILL);
// - the step's own stderr lines that start with "proot info: " are taken out with proot's notes.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, constants as fsConstants, copyFileSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../oci/index.ts';
import { defaultSearchPath } from './detect.ts';
import { ensureInRoot, removeStubs, resolveInRoot, sealStubs, type Stubs } from './rootpath.ts';
import type { OutputSink, RunStepOptions, RunStepResult } from './run.ts';
import { defaultCapabilities, withDefaultPath } from './spec.ts';

export const prootInstallHint = 'install proot: `apt-get install proot` (Debian/Ubuntu), `apk add proot` (Alpine), or `dnf install proot` (Fedora)';

function findExecutable(name: string, searchPath: string[] = defaultSearchPath): string | undefined {
  for (const dir of searchPath) {
    const p = join(dir, name);
    try {
      if (statSync(p).isFile()) return p;
    } catch { /* next */ }
  }
  return undefined;
}

export interface PtraceProbe {
  ok: boolean;
  /** The proot binary, when found. */
  proot?: string;
  /** Why the mode cannot run here (when !ok). */
  reason?: string;
  hint?: string;
}

let probed: PtraceProbe | undefined;

/**
 * Whether RUN steps can run through proot here: the binary is installed and it can trace a process
 * (some seccomp profiles forbid ptrace). Probes once per process unless `fresh`.
 */
export function probePtrace(options: { searchPath?: string[]; fresh?: boolean } = {}): PtraceProbe {
  if (probed && !options.fresh && !options.searchPath) return probed;
  const proot = findExecutable('proot', options.searchPath);
  let result: PtraceProbe;
  if (!proot) {
    result = { ok: false, reason: 'proot is not installed', hint: prootInstallHint };
  } else {
    const probe = findExecutable('true') ?? process.execPath;
    const r = spawnSync(proot, ['-v', '-1', probe, ...(probe === process.execPath ? ['-e', ''] : [])], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 20_000, env: { PATH: defaultSearchPath.join(':') } });
    result = r.status === 0
      ? { ok: true, proot }
      : { ok: false, proot, reason: `proot cannot trace processes here: ${(r.stderr || r.error?.message || `exit status ${r.status}`).trim().split('\n')[0]}`, hint: 'ptrace must be allowed (Docker allows it in its default seccomp profile on kernels >= 4.8; Kubernetes: do not use a seccomp profile that forbids ptrace)' };
  }
  if (!options.searchPath) probed = result;
  return result;
}

/** QEMU's name for each OCI architecture (as in emulation.ts). */
function qemuArch(p: Platform): string | undefined {
  const table: Record<string, string> = {
    amd64: 'x86_64', arm64: 'aarch64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', ppc64: 'ppc64', s390x: 's390x',
    riscv64: 'riscv64', mips64le: 'mips64el', mips64: 'mips64', mipsle: 'mipsel', mips: 'mips', loong64: 'loongarch64',
  };
  return table[p.architecture];
}

/**
 * proot's -q argument for a foreign platform (QEMU user mode called directly), or undefined when the
 * step runs natively. A registered binfmt handler does not help under proot (it runs a foreign ELF
 * itself and the step dies with SIGILL), and an unprivileged container cannot register one anyway.
 */
export function qemuForPlatform(platform: Platform | undefined, options: { qemuDir?: string } = {}): string | undefined {
  if (!platform) return undefined;
  const want = normalizePlatform(platform);
  const host = hostPlatform();
  if (want.os !== 'linux') throw new UserError(`cannot run steps for ${formatPlatform(want)}: only linux platforms can run RUN steps`);
  if (want.architecture === host.architecture || (host.architecture === 'amd64' && want.architecture === '386')) return undefined;
  const arch = qemuArch(want);
  if (!arch) throw new UserError(`cannot run RUN steps for ${formatPlatform(want)}: no QEMU emulator is known for architecture "${want.architecture}"`);
  const qemu = join(options.qemuDir ?? '/usr/bin', `qemu-${arch}-static`);
  if (!existsSync(qemu)) {
    throw new UserError(`cannot run RUN steps for ${formatPlatform(want)} with ptrace isolation: ${qemu} is missing`, {
      hint: 'install QEMU user emulation: `apt-get install qemu-user-static` (proot calls it directly; no binfmt registration needed)',
    });
  }
  return qemu;
}

/** HOME as runc sets it when the env has none: the user's home in the rootfs's /etc/passwd, else /. */
function homeOf(rootfs: string, uid: number): string {
  try {
    for (const line of readFileSync(resolveInRoot(rootfs, '/etc/passwd'), 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 7 && Number(f[2]) === uid && f[2] !== '') return f[5] || '/';
    }
  } catch { /* no passwd */ }
  return '/';
}

function emit(sink: OutputSink | undefined, chunk: Buffer): void {
  if (!sink || chunk.length === 0) return;
  if (typeof sink === 'function') sink(chunk);
  else sink.write(chunk);
}

function validate(o: RunStepOptions): void {
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
  if (o.network === 'none') {
    throw new UserError('RUN --network=none needs a network namespace, which the ptrace isolation (used where slipway has no privileges, e.g. inside an unprivileged container) cannot create', {
      hint: 'run the build where slipway can use runc (`--isolation runc` on a privileged runner or with sudo), or drop --network=none from the RUN instruction',
    });
  }
}

function hostsFile(hostname: string): string {
  return `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n`;
}

let setprivPath: string | null | undefined;

/** util-linux's setpriv (BusyBox's applet of that name has no --reuid/--groups), once per process. */
function utilLinuxSetpriv(): string | undefined {
  if (setprivPath === undefined) {
    setprivPath = null;
    for (const dir of defaultSearchPath) {
      const p = join(dir, 'setpriv');
      if (!existsSync(p)) continue;
      const r = spawnSync(p, ['--version'], { encoding: 'utf8', timeout: 10_000 });
      if (r.status === 0 && /util-linux/.test(r.stdout)) {
        setprivPath = p;
        break;
      }
    }
  }
  return setprivPath ?? undefined;
}

/** Capability names as setpriv spells them. */
const setprivCaps = defaultCapabilities.map((c) => '+' + c.slice('CAP_'.length).toLowerCase()).join(',');

/**
 * The command that becomes the step's user (uid, gid, exactly `additionalGids` as supplementary
 * groups, Docker's capability bounding set) and then execs proot: util-linux setpriv when present,
 * else our own Node (process.execve) — that fallback cannot shrink the bounding set.
 */
function asUser(user: RunStepOptions['user'], argv: string[]): [string, string[]] {
  const groups = user.additionalGids ?? [];
  const setpriv = utilLinuxSetpriv();
  if (setpriv) {
    return [setpriv, [
      `--reuid=${user.uid}`, `--regid=${user.gid}`, ...(groups.length ? [`--groups=${groups.join(',')}`] : ['--clear-groups']),
      '--inh-caps=-all', `--bounding-set=-all,${setprivCaps}`, '--', ...argv,
    ]];
  }
  const script = 'const [u,g,gs,...a]=process.argv.slice(1);process.setgroups(gs?gs.split(",").map(Number):[]);' +
    'process.setgid(Number(g));process.setuid(Number(u));process.execve(a[0],a,process.env)';
  return [process.execPath, ['-e', script, String(user.uid), String(user.gid), groups.join(','), ...argv]];
}

/** Whether `uid` (with groups `gids`) may traverse directory `st` (root may always). */
function searchable(st: { mode: number; uid: number; gid: number }, uid: number, gids: number[]): boolean {
  if (uid === 0) return true;
  if (st.uid === uid) return (st.mode & 0o100) !== 0;
  if (gids.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * The step's processes run as its uid on the host paths proot hands them, so a non-root step needs
 * search permission on every directory above the rootfs and the mount sources (runc enters them as
 * root). Directories we own inside `ownDir` (our work dir) get o+x; anything else throws.
 */
function ensureReachable(paths: string[], user: RunStepOptions['user'], ownDir: string): void {
  if (user.uid === 0) return;
  const gids = [user.gid, ...(user.additionalGids ?? [])];
  const me = process.geteuid?.() ?? 0;
  const own = resolve(ownDir);
  for (const path of paths) {
    const chain: string[] = [];
    for (let d = dirname(resolve(path)); ; d = dirname(d)) {
      chain.unshift(d);
      if (d === '/') break;
    }
    for (const dir of chain) {
      const st = statSync(dir);
      if (searchable(st, user.uid, gids)) continue;
      if ((dir === own || dir.startsWith(own + '/')) && st.uid === me) {
        chmodSync(dir, (st.mode & 0o7777) | 0o001);
        continue;
      }
      throw new UserError(`cannot run this RUN step as uid ${user.uid} with ptrace isolation: it must be able to enter ${dir} (mode ${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid}) on the way to ${path}`, {
        hint: `make it searchable (\`chmod o+x ${dir}\`), or keep slipway's work and cache directories under a searchable path`,
      });
    }
  }
}

/**
 * A private copy of a host file or directory for a read-only bind: contents, modes, owners and times
 * (files are cloned where the filesystem can). Plain Node, so it needs no GNU cp in the container.
 */
function privateCopy(source: string, dest: string): void {
  const st = lstatSync(source);
  if (st.isDirectory()) {
    mkdirSync(dest);
    for (const name of readdirSync(source)) privateCopy(join(source, name), join(dest, name));
    chmodSync(dest, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(source), dest);
  } else if (st.isFile()) {
    copyFileSync(source, dest, fsConstants.COPYFILE_FICLONE);
    chmodSync(dest, st.mode & 0o7777);
  } else {
    return; // sockets, fifos and devices are not copied
  }
  if (process.geteuid?.() === 0) lchownSync(dest, st.uid, st.gid);
  if (!st.isSymbolicLink()) utimesSync(dest, st.atime, st.mtime);
}

const noteLine = /proot info: [^\n]*\n/g;
const exitNote = /^proot info: v?pid (\d+): (exited with status|terminated with signal) (\d+)\n$/;
const quitNote = /proot warning: signal 3 received from process \d+\n/g;
const notePrefixes = ['proot info: ', 'proot warning: '];

/** Where to cut `text` so that a note still being written (no newline yet) is held back. */
function holdFrom(text: string): number {
  let cut = text.length;
  for (const p of notePrefixes) {
    const i = text.lastIndexOf(p);
    if (i >= 0 && !text.includes('\n', i)) cut = Math.min(cut, i);
  }
  for (let k = Math.min(14, text.length); k > 0; k--) {
    const tail = text.slice(text.length - k);
    if (notePrefixes.some((p) => p.startsWith(tail))) {
      cut = Math.min(cut, text.length - k);
      break;
    }
  }
  return cut;
}

/**
 * Takes proot's own notes out of the step's stderr: the start-up notes (one holds the argv, which may
 * span lines: we know its text exactly) and the per-tracee exit notes, which it reports. The step's
 * own lines that start with "proot info: " are taken out too (documented).
 */
class NoteFilter {
  private buf = '';
  private argvNote: string | undefined;
  private readonly onExit: (pid: number, status: number) => void;
  private readonly sink: OutputSink | undefined;
  constructor(argvNote: string, onExit: (pid: number, status: number) => void, sink: OutputSink | undefined) {
    this.argvNote = argvNote;
    this.onExit = onExit;
    this.sink = sink;
  }

  push(chunk: Buffer): void {
    this.buf += chunk.toString('latin1');
    this.drain(false);
  }

  end(): void {
    this.drain(true);
  }

  private drain(final: boolean): void {
    let text = this.buf;
    let held = '';
    if (this.argvNote !== undefined) {
      const at = text.indexOf('proot info: argv = ');
      if (at >= 0) {
        const rest = text.slice(at);
        if (rest.startsWith(this.argvNote)) {
          text = text.slice(0, at) + rest.slice(this.argvNote.length);
          this.argvNote = undefined;
        } else if (!final && this.argvNote.startsWith(rest)) {
          text = text.slice(0, at);
          held = rest;
        } else {
          this.argvNote = undefined;
        }
      }
    }
    text = text.replace(quitNote, '').replace(noteLine, (line) => {
      const m = exitNote.exec(line);
      if (m) this.onExit(Number(m[1]), m[2].startsWith('exited') ? Number(m[3]) : 128 + Number(m[3]));
      return '';
    });
    const cut = final || held ? text.length : holdFrom(text);
    emit(this.sink, Buffer.from(text.slice(0, cut), 'latin1'));
    this.buf = text.slice(cut) + held;
  }
}

/** Pids of the processes traced by `tracer` (TracerPid in /proc/PID/status). */
function tracees(tracer: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m && Number(m[1]) === tracer) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** The real children of `pid` (from /proc/PID/task/PID/children, else by scanning for its ppid). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return [];
  }
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

function signalNumber(sig: NodeJS.Signals): number {
  return osConstants.signals[sig] ?? 9;
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* gone */ }
}

/**
 * Runs the step through proot and resolves with the exit code of its command (128+n when killed by
 * signal n). Takes the same options as runStep; `runtime` and `rootless` are ignored.
 */
export async function runStepPtrace(options: RunStepOptions): Promise<RunStepResult> {
  const o = { ...options, rootfs: resolve(options.rootfs) };
  o.signal?.throwIfAborted();
  validate(o);
  const probe = probePtrace();
  if (!probe.ok) throw new UserError(`cannot run RUN steps with ptrace isolation: ${probe.reason}`, { hint: probe.hint });
  const qemu = qemuForPlatform(o.platform);
  const hostname = o.hostname ?? 'buildkitsandbox';
  const workDir = o.workDir ?? tmpdir();
  // Not root: the step runs as ourselves, like rootless runc maps its root to us.
  const asRoot = process.geteuid?.() === 0;
  if (!asRoot && (o.user.uid !== 0 || o.user.gid !== 0)) {
    throw new UserError(`RUN steps can only run as root inside the container when slipway is not root (asked for ${o.user.uid}:${o.user.gid})`, { hint: 'run slipway as root to use USER in RUN steps' });
  }

  const bundle = mkdtempSync(join(workDir, 'slipway-ptrace-'));
  const stubs: Stubs = { created: [], parents: new Map() };
  let prootPid: number | undefined;
  try {
    // Others (the step's uid) must reach the files we bind from here, not list them.
    chmodSync(bundle, 0o711);
    ensureInRoot(o.rootfs, o.cwd, 'dir');

    const binds: Array<[string, string]> = [];
    for (const dir of ['/proc', '/dev', '/sys']) {
      ensureInRoot(o.rootfs, dir, 'dir', stubs);
      binds.push([dir, dir]);
    }
    // With -q proot binds the host's / at /host-rootfs and /dev/null at /etc/ld.so.preload; make (and
    // later remove) those mountpoints ourselves so nothing of proot's lands in the rootfs.
    if (qemu) {
      ensureInRoot(o.rootfs, '/host-rootfs', 'dir', stubs);
      ensureInRoot(o.rootfs, '/etc/ld.so.preload', 'file', stubs);
    }
    const resolv = join(bundle, 'resolv.conf');
    if (existsSync(o.resolvConf ?? '/etc/resolv.conf')) copyFileSync(o.resolvConf ?? '/etc/resolv.conf', resolv);
    else writeFileSync(resolv, '');
    writeFileSync(join(bundle, 'hosts'), hostsFile(hostname));
    for (const [file, target] of [[resolv, '/etc/resolv.conf'], [join(bundle, 'hosts'), '/etc/hosts']]) {
      chmodSync(file, 0o644);
      ensureInRoot(o.rootfs, target, 'file', stubs);
      binds.push([file, target]);
    }
    let n = 0;
    for (const m of o.mounts ?? []) {
      switch (m.type) {
        case 'bind': {
          const isDir = statSync(m.source).isDirectory();
          ensureInRoot(o.rootfs, m.target, isDir ? 'dir' : 'file', stubs);
          let source = m.source;
          if (m.readonly !== false) {
            // No read-only binds under ptrace: the step gets a copy, and what it writes there is dropped.
            mkdirSync(join(bundle, 'ro'), { recursive: true, mode: 0o711 });
            source = join(bundle, 'ro', String(n++));
            privateCopy(m.source, source);
          }
          binds.push([source, m.target]);
          break;
        }
        case 'cache':
          mkdirSync(m.source, { recursive: true });
          ensureInRoot(o.rootfs, m.target, 'dir', stubs);
          binds.push([m.source, m.target]);
          break;
        case 'tmpfs': {
          // No mounts: an empty private directory (tmpfs's mode 1777), thrown away after the step.
          mkdirSync(join(bundle, 'tmpfs'), { recursive: true, mode: 0o711 });
          const dir = join(bundle, 'tmpfs', String(n++));
          mkdirSync(dir);
          chmodSync(dir, 0o1777);
          ensureInRoot(o.rootfs, m.target, 'dir', stubs);
          binds.push([dir, m.target]);
          break;
        }
        case 'secret': {
          mkdirSync(join(bundle, 'secrets'), { recursive: true, mode: 0o711 });
          const copy = join(bundle, 'secrets', String(n++));
          copyFileSync(m.source, copy);
          chmodSync(copy, m.mode ?? 0o400);
          if (process.geteuid?.() === 0) chownSync(copy, m.uid ?? 0, m.gid ?? 0);
          ensureInRoot(o.rootfs, m.target, 'file', stubs);
          binds.push([copy, m.target]);
          break;
        }
      }
    }
    // The guest paths as created above (symlinks already resolved inside the rootfs); `!` keeps proot
    // from dereferencing them again.
    const bindArgs: string[] = [];
    for (const [host, target] of binds) {
      const guest = '/' + resolveInRoot(o.rootfs, target).slice(o.rootfs.length).replace(/^\/+/, '');
      if (host.includes(':') || guest.includes(':')) throw new UserError(`cannot bind ${host} at ${target} with ptrace isolation: proot cannot bind paths containing ":"`);
      bindArgs.push('-b', `${host}:${guest}${guest === '/' ? '' : '!'}`);
    }
    sealStubs(stubs);
    if (asRoot) ensureReachable([o.rootfs + '/', ...binds.map(([h]) => h)], o.user, workDir);

    const prootArgs = ['-v', '1', '-r', o.rootfs, ...bindArgs, '-w', o.cwd, ...(qemu ? ['-q', qemu] : []), ...o.args];
    const [cmd, argv] = asRoot ? asUser(o.user, [probe.proot!, ...prootArgs]) : [probe.proot!, prootArgs];
    const stepEnv = withDefaultPath(o.env);
    if (!stepEnv.some((e) => e.startsWith('HOME='))) stepEnv.push(`HOME=${homeOf(o.rootfs, o.user.uid)}`);
    const env = Object.fromEntries(stepEnv.map((e) => {
      const i = e.indexOf('=');
      return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
    }));

    const exitCode = await new Promise<number>((resolvePromise, reject) => {
      // The main process: proot's only real child; every other tracee descends from it.
      let mainPid: number | undefined;
      let mainStatus: number | undefined;
      const seen = new Map<number, number>();
      let closed = false;
      let ending = false;
      const endTree = (): void => {
        if (ending || prootPid === undefined) return;
        ending = true;
        // On SIGQUIT proot kills every tracee it knows and exits; the scan catches any it has not seen yet.
        const pid = prootPid;
        tryKill(pid, 'SIGQUIT');
        for (const t of tracees(pid)) tryKill(t, 'SIGKILL');
        setTimeout(() => {
          if (closed) return;
          for (const t of tracees(pid)) tryKill(t, 'SIGKILL');
          tryKill(-pid, 'SIGKILL');
        }, 2000).unref();
      };
      const findMain = (): void => {
        if (mainPid !== undefined || prootPid === undefined) return;
        const kids = childrenOf(prootPid);
        if (kids.length > 0) mainPid = kids[0];
        else if (seen.size > 0) mainPid = Math.min(...seen.keys()); // already reaped: the first tracee has the lowest pid
        if (mainPid !== undefined && seen.has(mainPid)) onExit(mainPid, seen.get(mainPid)!);
      };
      const onExit = (pid: number, status: number): void => {
        seen.set(pid, status);
        if (mainPid === undefined) findMain();
        if (pid !== mainPid || mainStatus !== undefined) return;
        mainStatus = status;
        endTree();
      };
      const filter = new NoteFilter(`proot info: argv = ${o.args.join(' ')}\n`, onExit, o.stderr);

      // The step's files get modes like runc's default umask 022.
      const umask = process.umask(0o022);
      let child;
      try {
        child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
      } finally {
        process.umask(umask);
      }
      prootPid = child.pid;
      // proot forks the main process right after start-up, and it waits stopped for proot's event loop:
      // a short poll finds it (an exit note before that is handled by findMain too).
      const started = Date.now();
      const poll = setInterval(() => {
        findMain();
        if (mainPid !== undefined || Date.now() - started > 10_000) clearInterval(poll);
      }, 2);
      child.stdout.on('data', (c: Buffer) => emit(o.stdout, c));
      child.stderr.on('data', (c: Buffer) => filter.push(c));
      const onAbort = (): void => endTree();
      o.signal?.addEventListener('abort', onAbort, { once: true });
      child.on('error', (err) => {
        clearInterval(poll);
        reject(new UserError(`cannot start proot (${probe.proot}): ${err.message}`));
      });
      child.on('close', (code, sig) => {
        closed = true;
        clearInterval(poll);
        o.signal?.removeEventListener('abort', onAbort);
        filter.end();
        if (mainStatus === undefined && seen.size > 0) mainStatus = seen.get(mainPid ?? Math.min(...seen.keys()));
        // No note at all: proot failed before starting the command (its error is on stderr).
        resolvePromise(mainStatus ?? code ?? 128 + (sig ? signalNumber(sig) : 9));
      });
    });
    o.signal?.throwIfAborted();
    return { exitCode };
  } finally {
    if (prootPid !== undefined) {
      // proot's glue directories (for -q's /host-rootfs) live in the host's /tmp; a killed proot leaves them.
      const tmp = process.env.PROOT_TMP_DIR ?? '/tmp';
      try {
        for (const name of readdirSync(tmp)) if (name.startsWith(`proot-${prootPid}-`)) rmSync(join(tmp, name), { recursive: true, force: true });
      } catch { /* none */ }
    }
    removeStubs(stubs);
    rmSync(bundle, { recursive: true, force: true });
  }
}
