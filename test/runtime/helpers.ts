// Test root filesystems made from a static busybox, with its applets as symlinks (busybox --install -s style).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const amd64Busybox = '/bin/busybox';
export const arm64Busybox = new URL('../../.tools/arm64/bin/busybox', import.meta.url).pathname;

/** A rootfs with /bin/busybox and symlinks for every applet; `listFrom` runs on the host to list applets. */
export function busyboxRootfs(busybox: string, listFrom = amd64Busybox): { dir: string; rootfs: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-rt-'));
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  copyFileSync(busybox, join(rootfs, 'bin', 'busybox'));
  const applets = execFileSync(listFrom, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(rootfs, 'bin', a));
  mkdirSync(join(rootfs, 'tmp'), { mode: 0o1777 });
  return { dir, rootfs, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function installedRuntimes(): Array<'runc' | 'crun'> {
  return (['runc', 'crun'] as const).filter((n) => ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'].some((d) => existsSync(join(d, n))));
}

export const isRoot = process.getuid?.() === 0;
