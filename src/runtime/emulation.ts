// Running foreign-architecture steps through QEMU user emulation registered in binfmt_misc. With the
// F (fix binary) flag the kernel opens the interpreter at registration, so the runtime spec needs
// nothing: the emulator does not have to exist inside the rootfs.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../oci/index.ts';

/** QEMU's name for each OCI architecture (and variant where it matters). */
export function qemuArch(p: Platform): string | undefined {
  const table: Record<string, string> = {
    amd64: 'x86_64', arm64: 'aarch64', arm: 'arm', '386': 'i386', ppc64le: 'ppc64le', ppc64: 'ppc64', s390x: 's390x',
    riscv64: 'riscv64', mips64le: 'mips64el', mips64: 'mips64', mipsle: 'mipsel', mips: 'mips', loong64: 'loongarch64',
  };
  return table[p.architecture];
}

/** Architectures the host runs natively besides its own. */
function nativelyRuns(host: Platform, want: Platform): boolean {
  if (host.architecture === want.architecture) return true;
  return (host.architecture === 'amd64' && want.architecture === '386');
}

export interface EmulationOptions {
  binfmtDir?: string;
  binfmtConfDir?: string;
  /** Whether we may mount binfmt_misc and register handlers (default: running as root). */
  canRegister?: boolean;
}

export interface HandlerState {
  enabled: boolean;
  flags: string;
  interpreter: string;
}

/** The state of the binfmt_misc handler `qemu-<arch>`, or undefined when none is registered. */
export function readHandler(binfmtDir: string, name: string): HandlerState | undefined {
  let text: string;
  try {
    text = readFileSync(join(binfmtDir, name), 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  const field = (k: string) => lines.find((l) => l.startsWith(k + ' '))?.slice(k.length + 1).trim() ?? '';
  return { enabled: lines[0].trim() === 'enabled', flags: field('flags:'), interpreter: field('interpreter') };
}

/**
 * Makes sure steps for `platform` can run here: native, or a QEMU binfmt handler with the F flag.
 * Registers the handler from qemu-user-static's binfmt.d file when we are root and it is missing;
 * otherwise throws a UserError that says how to get it.
 */
export function ensureEmulation(platform: Platform, options: EmulationOptions = {}): void {
  const want = normalizePlatform(platform);
  const host = hostPlatform();
  if (want.os !== 'linux') throw new UserError(`cannot run steps for ${formatPlatform(want)}: only linux platforms can run RUN steps`);
  if (nativelyRuns(host, want)) return;
  const arch = qemuArch(want);
  const what = formatPlatform(want);
  if (!arch) throw new UserError(`cannot run RUN steps for ${what}: no QEMU emulator is known for architecture "${want.architecture}"`);
  const binfmtDir = options.binfmtDir ?? '/proc/sys/fs/binfmt_misc';
  const confDir = options.binfmtConfDir ?? '/usr/lib/binfmt.d';
  const canRegister = options.canRegister ?? process.getuid?.() === 0;
  const name = `qemu-${arch}`;
  const conf = join(confDir, `${name}.conf`);
  const hint = `install QEMU user emulation and register it: \`apt-get install qemu-user-static binfmt-support\` ` +
    `(it registers ${name} at boot), or \`docker run --privileged --rm tonistiigi/binfmt --install ${arch}\`; then run again (as root slipway registers it itself)`;

  let handler = readHandler(binfmtDir, name);
  if (handler === undefined && canRegister) {
    if (!existsSync(conf)) throw new UserError(`cannot run RUN steps for ${what}: no binfmt handler ${name}, and ${conf} is missing`, { hint });
    if (!existsSync(join(binfmtDir, 'register'))) {
      const r = spawnSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', binfmtDir], { encoding: 'utf8' });
      if (r.status !== 0) throw new UserError(`cannot mount binfmt_misc on ${binfmtDir}: ${(r.stderr || r.error?.message || '').trim()}`, { hint });
    }
    const line = readFileSync(conf, 'utf8').split('\n').find((l) => l.startsWith(':'));
    if (!line) throw new UserError(`${conf} holds no binfmt registration line`, { hint });
    // Always ask for F so the interpreter works inside any rootfs.
    const fields = line.trim().split(':');
    if (!fields[fields.length - 1].includes('F')) fields[fields.length - 1] += 'F';
    const interpreter = fields[fields.length - 2];
    if (!existsSync(interpreter)) throw new UserError(`cannot register ${name}: its interpreter ${interpreter} is missing`, { hint });
    try {
      writeFileSync(join(binfmtDir, 'register'), fields.join(':'));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new UserError(`cannot register ${name} in binfmt_misc: ${(err as Error).message}`, { hint });
    }
    handler = readHandler(binfmtDir, name);
  }
  if (handler === undefined) throw new UserError(`cannot run RUN steps for ${what}: no QEMU binfmt handler ${name} is registered`, { hint });
  if (!handler.enabled) throw new UserError(`cannot run RUN steps for ${what}: the binfmt handler ${name} is disabled`, { hint: `enable it: echo 1 > ${join(binfmtDir, name)}` });
  if (!handler.flags.includes('F')) {
    throw new UserError(`cannot run RUN steps for ${what}: the binfmt handler ${name} lacks the F (fix binary) flag, so its interpreter ${handler.interpreter} would have to exist inside the image`, {
      hint: `re-register it with the F flag: echo -1 > ${join(binfmtDir, name)}, then (as root) run slipway again, or use tonistiigi/binfmt --install ${arch}`,
    });
  }
}
