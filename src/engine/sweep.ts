// Build dirs under the cache dir's tmp/ carry their owner (`host pid`), so a later build can tell
// an abandoned one (killed with SIGKILL, or the machine went down) and remove it with its mounts.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ownerFile = '.owner';

/**
 * A fresh build dir under `tmp` (made too), marked with its owner. Synchronous, and a few
 * microseconds: a session makes it on first use (a fully cached build never does).
 */
export function makeBuildDir(tmp: string): string {
  mkdirSync(tmp, { recursive: true });
  const dir = mkdtempSync(join(tmp, 'build-'));
  writeFileSync(join(dir, ownerFile), `${hostname()} ${process.pid}\n`);
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes build dirs under `tmp` whose process is gone: their overlay mounts first, deepest first,
 * then the files. A dir of another host is left alone for a day, in case the cache dir is shared.
 * Usually there is none, which one synchronous readdir tells.
 */
export async function sweepAbandonedBuilds(tmp: string): Promise<void> {
  let names: string[];
  try { names = readdirSync(tmp); } catch { return; }
  for (const name of names) {
    if (!name.startsWith('build-')) continue;
    const dir = join(tmp, name);
    const owner = (await readFile(join(dir, ownerFile), 'utf8').catch(() => '')).trim().split(' ');
    const age = Date.now() - ((await stat(dir).catch(() => undefined))?.mtimeMs ?? Date.now());
    const mine = owner[0] === hostname();
    if (owner.length === 2 && (mine ? alive(Number(owner[1])) : age < 86_400_000)) continue;
    if (owner.length !== 2 && age < 3_600_000) continue; // being created right now
    const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => '')).split('\n')
      .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
      .filter((m): m is string => Boolean(m) && (m === dir || m.startsWith(dir + '/')))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await promisify(execFile)('umount', ['-l', m]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}
