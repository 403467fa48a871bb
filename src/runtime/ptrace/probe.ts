// Whether the ptrace isolation can run here (proot installed and able to trace), and the QEMU that
// proot calls for a foreign platform.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../errors.ts';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../../oci/index.ts';
import { defaultSearchPath } from '../detect.ts';
import { qemuArch } from '../emulation.ts';

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

