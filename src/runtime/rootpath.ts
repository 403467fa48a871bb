// Mountpoints inside a root filesystem: created where the container will see them (resolved by fs's
// resolveInRoot, so a hostile image can never make us create anything outside its rootfs), and
// removed after the step when it left them empty.
import { lstatSync, mkdirSync, rmdirSync, statSync, unlinkSync, utimesSync, writeFileSync, type Stats } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { UserError } from '../errors.ts';
import { resolveInRoot } from '../fs/index.ts';

/** The host path for `inside` (absolute, as the container sees it); see fs resolveInRoot. */
export function hostPathInRoot(rootfs: string, inside: string, followFinal = true): string {
  return join(rootfs, resolveInRoot(rootfs, inside, followFinal));
}

/**
 * A time for utimes, as precisely as it takes one: seconds in a double, the nearest to the time (a
 * Date would keep milliseconds only). The time set is then within a few hundred nanoseconds of
 * the old one (5,000 random times here: at most 120 ns off; a whole second exactly), and fs
 * snapshot sameDirTime allows for that.
 */
function seconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

export interface Stubs {
  /** Host paths we created, in creation order. */
  created: string[];
  /** Existing directories we created entries in: their times before, and their mtime right after. */
  parents: Map<string, { atime: number; mtime: number; mtimeAfter?: number }>;
}

/**
 * Makes sure `inside` exists in the rootfs as a directory or file (a mountpoint), creating missing
 * components and recording them in `stubs` so `removeStubs` can take them away after the step.
 */
export function ensureInRoot(rootfs: string, inside: string, kind: 'dir' | 'file', stubs?: Stubs, mode = 0o755): string {
  const host = hostPathInRoot(rootfs, inside);
  const parts = relative(rootfs, host).split(sep).filter((c) => c !== '');
  let cur = rootfs;
  parts.forEach((comp, i) => {
    const next = join(cur, comp);
    const last = i === parts.length - 1;
    let st: Stats | undefined;
    try {
      st = lstatSync(next);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st === undefined) {
      if (stubs && !stubs.parents.has(cur)) {
        const ps = statSync(cur, { bigint: true });
        stubs.parents.set(cur, { atime: seconds(ps.atimeNs), mtime: seconds(ps.mtimeNs) });
      }
      if (last && kind === 'file') writeFileSync(next, '', { flag: 'wx', mode: 0o644 });
      else mkdirSync(next, { mode });
      stubs?.created.push(next);
    } else if (!last && !st.isDirectory()) {
      throw new UserError(`cannot create ${inside} in the root filesystem: /${parts.slice(0, i + 1).join('/')} is not a directory`);
    } else if (last && kind === 'dir' && !st.isDirectory()) {
      throw new UserError(`cannot use ${inside} as a directory: it exists in the root filesystem and is not a directory`);
    } else if (last && kind === 'file' && st.isDirectory()) {
      throw new UserError(`cannot mount a file on ${inside}: it is a directory in the root filesystem`);
    }
    cur = next;
  });
  return host;
}

/** Call once every mountpoint placeholder exists: notes each parent's mtime so cleanup can tell if the step changed it. */
export function sealStubs(stubs: Stubs): void {
  for (const [dir, t] of stubs.parents) t.mtimeAfter = statSync(dir).mtimeMs;
}

/**
 * Removes the stubs the step left empty (deepest first) and gives their parents back the times they
 * had, unless the step itself changed the parent. What the step wrote is never removed.
 */
export function removeStubs(stubs: Stubs): void {
  const untouched = [...stubs.parents].filter(([dir, t]) => {
    try {
      return statSync(dir).mtimeMs === t.mtimeAfter;
    } catch {
      return false;
    }
  });
  for (const path of [...stubs.created].reverse()) {
    try {
      const st = lstatSync(path);
      if (st.isDirectory()) rmdirSync(path);
      else if (st.isFile() && st.size === 0) unlinkSync(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
    }
  }
  for (const [dir, t] of untouched) {
    try {
      utimesSync(dir, t.atime, t.mtime);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
