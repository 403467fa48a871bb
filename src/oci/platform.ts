// Platform strings (`os/arch[/variant]`) parsed and normalised as containerd's platforms package does,
// so `linux/arm64` and `linux/arm64/v8`, or `linux/x86_64` and `linux/amd64`, name the same platform.
import { nearest } from '../suggest.ts';
import type { Platform } from './types.ts';

const archAliases: Record<string, string> = {
  x86_64: 'amd64', 'x86-64': 'amd64', aarch64: 'arm64', armhf: 'arm', armel: 'arm',
  i386: '386', i486: '386', i586: '386', i686: '386',
};

function normalizeArchVariant(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  const a = arch.toLowerCase();
  let architecture = archAliases[a] ?? a;
  let v = variant?.toLowerCase();
  if (a === 'armhf') v = 'v7';
  if (a === 'armel') v = 'v6';
  if (architecture === 'arm64') {
    if (v === '8' || v === 'v8') v = undefined;
  } else if (architecture === 'arm') {
    if (v === undefined || v === '' || v === '7') v = 'v7';
    else if (v === '5' || v === '6' || v === '8') v = 'v' + v;
  } else if (architecture === 'amd64') {
    if (v === 'v1') v = undefined;
  }
  if (architecture === 'aarch64') architecture = 'arm64';
  return v ? { architecture, variant: v } : { architecture };
}

// The OS and architecture names of Go (GOOS/GOARCH), which containerd's platforms accept.
const knownOS = ['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1', 'dragonfly'];
const knownArch = ['amd64', 'arm64', 'arm', '386', 'ppc64le', 'ppc64', 's390x', 'riscv64', 'mips64le', 'mips64', 'mipsle', 'mips', 'loong64', 'wasm'];

/** Parses `os/arch[/variant]` (or `arch` alone, meaning linux). Throws one clear error on bad input. */
export function parsePlatform(text: string): Platform {
  const s = text.trim();
  const parts = s.split('/');
  const ok = /^[a-z0-9_.-]+$/i;
  if (s === '' || parts.length > 3 || parts.some((p) => !ok.test(p))) {
    throw new Error(`invalid platform "${text}": expected os/arch[/variant], for example linux/amd64 or linux/arm64/v8`);
  }
  const p = parts.length === 1 ? { os: 'linux', ...normalizeArchVariant(parts[0], undefined) } : { os: parts[0].toLowerCase(), ...normalizeArchVariant(parts[1], parts[2]) };
  if (!knownOS.includes(p.os)) {
    const guess = nearest(p.os, knownOS);
    throw new Error(`invalid platform "${text}": unknown operating system "${p.os}"${guess ? ` (did you mean ${guess}?)` : ''}; expected os/arch[/variant], e.g. linux/amd64`);
  }
  if (!knownArch.includes(p.architecture)) {
    const guess = nearest(p.architecture, knownArch);
    throw new Error(`invalid platform "${text}": unknown architecture "${p.architecture}"${guess ? ` (did you mean ${p.os}/${guess}?)` : ''}; expected os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
  }
  return p;
}

export function normalizePlatform(p: Platform): Platform {
  const out: Platform = { os: p.os, ...normalizeArchVariant(p.architecture, p.variant) };
  if (p['os.version']) out['os.version'] = p['os.version'];
  return out;
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? '/' + p.variant : ''}`;
}

/** True when `have` (e.g. from an index) can serve a request for `want`. */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  return w.os === h.os && w.architecture === h.architecture && (w.variant ?? '') === (h.variant ?? '');
}

/** The platform of the machine we run on, in OCI terms. */
export function hostPlatform(): Platform {
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch] ?? process.arch;
  return normalizePlatform({ os: 'linux', architecture: arch });
}
