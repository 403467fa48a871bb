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
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { ensureInRoot, hostPathInRoot, removeStubs, sealStubs, type Stubs } from '../rootpath.ts';
import { emit, networkFiles, signalNumber, validateStep, type RunStepResult, type StepOptions } from '../run.ts';
import { refusePrivileged } from '../privileged.ts';
import { withDefaultPath } from '../spec.ts';
import { privateCopy } from './copy.ts';
import { NoteFilter, childrenByScan, childrenOf, tracees, tryKill } from './notes.ts';
import { probePtrace, qemuForPlatform } from './probe.ts';
import { asUser, ensureReachable, homeOf } from './users.ts';

function validate(o: StepOptions): void {
  validateStep(o);
  refusePrivileged('ptrace', { insecure: o.insecure, devices: Boolean(o.cdi) });
  if (o.network === 'none') {
    throw new UserError('RUN --network=none needs a network namespace, which the ptrace isolation (used where slipway has no privileges, e.g. inside an unprivileged container) cannot create', {
      hint: 'run the build where slipway can use runc (`--isolation runc` on a privileged runner or with sudo), or drop --network=none from the RUN instruction',
    });
  }
}

/**
 * Runs the step through proot and resolves with the exit code of its command (128+n when killed by
 * signal n). Takes the same options as runStep; `runtime` and `rootless` are ignored.
 */
export async function runStepPtrace(options: StepOptions): Promise<RunStepResult> {
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
    binds.push(...networkFiles(o, bundle, hostname, stubs));
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
      const guest = '/' + hostPathInRoot(o.rootfs, target).slice(o.rootfs.length).replace(/^\/+/, '');
      if (host.includes(':') || guest.includes(':')) throw new UserError(`cannot bind ${host} at ${target} with ptrace isolation: proot cannot bind paths containing ":"`);
      bindArgs.push('-b', `${host}:${guest}${guest === '/' ? '' : '!'}`);
    }
    sealStubs(stubs);
    if (asRoot) ensureReachable([o.rootfs, ...binds.map(([h]) => h)], o.user, workDir);

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
      let guessed = false;
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
        let kids = childrenOf(prootPid);
        // The children file can leave out a live child under load; before guessing from exit notes
        // (another tracee's exit would pass for the step's), every process's parent is asked.
        if (kids.length === 0 && seen.size > 0) kids = childrenByScan(prootPid);
        if (kids.length > 0) mainPid = kids[0];
        else if (seen.size > 0) {
          // Already reaped: the first tracee has the lowest pid. The notes may still be coming in
          // (under load they arrive together at the end), so the status is read again at close.
          mainPid = Math.min(...seen.keys());
          guessed = true;
        }
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
        if ((guessed || mainStatus === undefined) && seen.size > 0) mainStatus = seen.get(guessed ? Math.min(...seen.keys()) : mainPid ?? Math.min(...seen.keys()));
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

