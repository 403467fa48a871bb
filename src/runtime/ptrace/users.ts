// Running a step's processes as its user under proot: real host ids through util-linux setpriv
// (with Docker's default capability set), HOME as runc sets it, and the search permission a
// non-root step needs on every directory above its rootfs and mount sources.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { UserError } from '../../errors.ts';
import { hostPathInRoot } from '../rootpath.ts';
import type { StepOptions } from '../run.ts';
import { defaultSearchPath } from '../detect.ts';
import { defaultCapabilities } from '../spec.ts';

/** HOME as runc sets it when the env has none: the user's home in the rootfs's /etc/passwd, else /. */
export function homeOf(rootfs: string, uid: number): string {
  try {
    for (const line of readFileSync(hostPathInRoot(rootfs, '/etc/passwd'), 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 7 && Number(f[2]) === uid && f[2] !== '') return f[5] || '/';
    }
  } catch { /* no passwd */ }
  return '/';
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
export function asUser(user: StepOptions['user'], argv: string[]): [string, string[]] {
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
 * search permission on the rootfs, the mount sources and every directory above them (runc enters them as
 * root). Directories we own inside `ownDir` (our work dir) get o+x; anything else throws.
 */
export function ensureReachable(paths: string[], user: StepOptions['user'], ownDir: string): void {
  if (user.uid === 0) return;
  const gids = [user.gid, ...(user.additionalGids ?? [])];
  const me = process.geteuid?.() ?? 0;
  const own = resolve(ownDir);
  for (const path of paths) {
    const chain: string[] = [];
    // The path itself too when it is a directory (the rootfs, a bound dir): the step enters it.
    const start = statSync(path, { throwIfNoEntry: false })?.isDirectory() ? resolve(path) : dirname(resolve(path));
    for (let d = start; ; d = dirname(d)) {
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

