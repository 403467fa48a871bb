// What RUN --security=insecure gets on this host, as BuildKit's insecure mode computes it: the
// capabilities this process holds (by name), and the host devices it adds when not in a user namespace.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.ts';
import { insecureDevices, type SpecDevice } from './spec.ts';

/** Linux capability names by bit number (capability.h). */
const capabilityNames = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
].map((n) => `CAP_${n}`);

/** The capabilities in a /proc/PID/status `CapEff:` mask, by name (unknown bits are left out). */
export function capabilitiesOf(mask: bigint): string[] {
  return capabilityNames.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

function inUserNamespace(): boolean {
  try {
    return !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
  } catch {
    return false;
  }
}

/** The first free loop device's number (`losetup -f`), or 0 as BuildKit falls back to. */
function firstFreeLoop(): number {
  const r = spawnSync('losetup', ['-f'], { encoding: 'utf8', timeout: 10_000 });
  const m = /\/dev\/loop(\d+)/.exec(r.stdout ?? '');
  return m ? Number(m[1]) : 0;
}

export function insecureSpec(): { capabilities: string[]; devices: SpecDevice[] } {
  const eff = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return { capabilities: capabilitiesOf(BigInt('0x' + eff)), devices: inUserNamespace() ? [] : insecureDevices(firstFreeLoop()) };
}

/** The refusal where an isolation cannot run a privileged step or pass a host device in. */
export function refusePrivileged(isolation: 'rootless' | 'ptrace', what: { insecure?: boolean; devices?: boolean }): void {
  const where = isolation === 'ptrace'
    ? 'the ptrace isolation (proot, used where slipway has no privileges) runs steps as an ordinary process: it has no capabilities to grant and no device cgroup'
    : 'the rootless isolation runs steps in a user namespace, which cannot hold host capabilities or open host devices';
  const how = 'run the build as root with runc or crun (`--isolation runc`: a privileged runner, or sudo)';
  if (what.insecure) throw new UserError(`RUN --security=insecure cannot run privileged here: ${where}`, { hint: `${how}, or drop --security=insecure` });
  if (what.devices) throw new UserError(`RUN --device cannot pass a CDI device in here: ${where}`, { hint: `${how}, or mark the device optional (required=false) or drop --device` });
}
