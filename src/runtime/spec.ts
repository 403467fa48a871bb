// The OCI runtime spec (config.json) for one RUN step, shaped like the one BuildKit and Docker write:
// their default capabilities, masked and read-only /proc paths, a device allow-list, NOFILE 1048576.
// `insecure` is BuildKit's security mode insecure: every capability we hold, no masked or read-only
// paths, writable /sys and cgroupfs, every device allowed, and the few host devices BuildKit adds.
// CDI device nodes get a node and a device-cgroup rule each. Pure: no I/O, so it can be tested and read on its own.
import type { CdiDeviceNode } from './cdi.ts';

export const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Docker's (and BuildKit's) default capability set. */
export const defaultCapabilities = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const maskedPaths = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
const readonlyPaths = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

interface CharDevice { path: string; major: number; minor: number; mode: number }

/** The only devices a step can open; everything else is denied in the device cgroup. */
const allowedDevices: CharDevice[] = [
  { path: '/dev/null', major: 1, minor: 3, mode: 0o666 },
  { path: '/dev/zero', major: 1, minor: 5, mode: 0o666 },
  { path: '/dev/full', major: 1, minor: 7, mode: 0o666 },
  { path: '/dev/random', major: 1, minor: 8, mode: 0o666 },
  { path: '/dev/urandom', major: 1, minor: 9, mode: 0o666 },
  { path: '/dev/tty', major: 5, minor: 0, mode: 0o666 },
];

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface SpecInput {
  /** Absolute host path of the root filesystem. */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  hostname: string;
  /** false: share the host's network namespace. */
  newNetworkNamespace: boolean;
  /** Mounts after the standard ones (/proc, /dev, …), already resolved to host sources. */
  mounts: SpecMount[];
  /** Rootless: map container root to this host uid/gid in a new user namespace. */
  userNamespace?: { hostUid: number; hostGid: number };
  /** RLIMIT_NOFILE (soft = hard); default 1048576 like Docker. Omit in rootless mode to inherit. */
  nofile?: number;
  /** RUN --security=insecure (root mode only): the capabilities to grant and the host devices to add. */
  insecure?: { capabilities: string[]; devices: SpecDevice[] };
  /** CDI device nodes (RUN --device). */
  devices?: CdiDeviceNode[];
}

/** A device node the runtime creates in the step's /dev. */
export interface SpecDevice { path: string; type: 'b' | 'c' | 'p'; major: number; minor: number; fileMode?: number; uid?: number; gid?: number }

/** The host devices BuildKit's insecure mode adds (outside a user namespace); loops up to the first free one + 7. */
export function insecureDevices(firstFreeLoop: number): SpecDevice[] {
  const c = (path: string, major: number, minor: number): SpecDevice => ({ path, type: 'c', major, minor });
  const loops = Array.from({ length: firstFreeLoop + 8 }, (_, i): SpecDevice => ({ path: `/dev/loop${i}`, type: 'b', major: 7, minor: i }));
  return [c('/dev/kmsg', 1, 11), c('/dev/cuse', 10, 203), c('/dev/fuse', 10, 229), c('/dev/kvm', 10, 232), c('/dev/net/tun', 10, 200), c('/dev/loop-control', 10, 237), ...loops];
}

/** Adds the default PATH unless the step's env sets one. */
export function withDefaultPath(env: string[]): string[] {
  return env.some((e) => e.startsWith('PATH=')) ? [...env] : [`PATH=${defaultPath}`, ...env];
}

export function buildSpec(input: SpecInput): Record<string, unknown> {
  const rootless = input.userNamespace !== undefined;
  const insecure = rootless ? undefined : input.insecure;
  const caps = insecure ? insecure.capabilities : input.user.uid === 0 ? defaultCapabilities : [];
  // The user namespace first: some runtimes create namespaces in the order listed.
  const namespaces: Array<{ type: string }> = [...(rootless ? [{ type: 'user' }] : []), { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (input.newNetworkNamespace) namespaces.push({ type: 'network' });

  const standardMounts: SpecMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(rootless ? [] : ['gid=5'])] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // Rootless without a network namespace of our own cannot mount a fresh sysfs: bind the host's, read-only.
    rootless && !input.newNetworkNamespace
      ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', ...(insecure ? [] : ['ro'])] },
    // Insecure mode: the step's cgroups, writable (BuildKit mounts them read-only otherwise).
    ...(insecure ? [{ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev'] }] : []),
  ];
  const cdi = input.devices ?? [];
  const nodes: SpecDevice[] = [
    ...allowedDevices.map((d): SpecDevice => ({ path: d.path, type: 'c', major: d.major, minor: d.minor, fileMode: d.mode, uid: 0, gid: 0 })),
    ...(insecure?.devices ?? []),
  ].filter((d) => !cdi.some((x) => x.path === d.path));
  for (const d of cdi) nodes.push({ path: d.path, type: d.type, major: d.major, minor: d.minor, ...(d.fileMode !== undefined ? { fileMode: d.fileMode } : {}), ...(d.uid !== undefined ? { uid: d.uid } : {}), ...(d.gid !== undefined ? { gid: d.gid } : {}) });
  const cdiRules = cdi.filter((d) => d.type !== 'p').map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.permissions }));

  const linux: Record<string, unknown> = {
    namespaces,
    maskedPaths: insecure ? [] : maskedPaths,
    readonlyPaths: insecure ? [] : readonlyPaths,
    devices: nodes,
  };
  if (rootless) {
    linux.uidMappings = [{ containerID: 0, hostID: input.userNamespace!.hostUid, size: 1 }];
    linux.gidMappings = [{ containerID: 0, hostID: input.userNamespace!.hostGid, size: 1 }];
  } else {
    linux.resources = {
      devices: insecure
        ? [{ allow: true, type: 'c', access: 'rwm' }, { allow: true, type: 'b', access: 'rwm' }]
        : [
          { allow: false, access: 'rwm' },
          ...allowedDevices.map((d) => ({ allow: true, type: 'c', major: d.major, minor: d.minor, access: 'rwm' })),
          { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }, // /dev/ptmx
          { allow: true, type: 'c', major: 136, access: 'rwm' }, // /dev/pts/*
          ...cdiRules,
        ],
    };
  }

  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.user.uid, gid: input.user.gid, ...(input.user.additionalGids?.length ? { additionalGids: input.user.additionalGids } : {}) },
      args: input.args,
      env: withDefaultPath(input.env),
      cwd: input.cwd,
      capabilities: insecure
        ? { bounding: caps, effective: caps, permitted: caps, inheritable: caps, ambient: caps }
        : { bounding: defaultCapabilities, effective: caps, permitted: caps },
      // Rootless cannot raise the hard limit above the caller's: inherit it there.
      ...(rootless ? {} : { rlimits: [{ type: 'RLIMIT_NOFILE', hard: input.nofile ?? 1048576, soft: input.nofile ?? 1048576 }] }),
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [...standardMounts, ...input.mounts],
    linux,
  };
}
