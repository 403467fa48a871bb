// Running RUN steps as root when the runner user is not: the entry re-runs itself through
// `sudo -n` (never prompting). Secrets must not appear in argv (visible in `ps`) nor in a file, and
// sudo may drop variables (INPUT_BUILD-ARGS has a dash), so the whole environment goes to the root
// process as JSON on its stdin. Afterwards the root process hands what it wrote under the
// workspace back to the runner's user, so no root-owned file is left for the next step.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, lchownSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { planBuild } from '../dockerfile/index.ts';
import { hostPlatform } from '../oci/index.ts';
import { contextLookup, type BuildRequest } from '../request/index.ts';

/** Set (to `1`) in the environment of the process started through sudo: it must not re-run itself again. */
export const elevatedFlag = 'SLIPWAY_ACTION_ELEVATED';
/** `uid:gid` of the runner's user, handed to the root process for chowning its files back. */
export const ownerVariable = 'SLIPWAY_ACTION_OWNER';

export type Elevation =
  | { how: 'in-process'; why: string }
  | { how: 'sudo'; sudo: string; why: string };

export interface ElevationFacts {
  uid: number;
  /** This process was itself started through sudo by the entry. */
  elevated: boolean;
  /** The build has RUN steps (they need root, or rootless user namespaces). */
  hasRun: boolean;
  /** Path of a sudo that works without a password (`sudo -n true` succeeded), if any. */
  sudo?: string;
}

export function decideElevation(f: ElevationFacts): Elevation {
  if (f.elevated) return { how: 'in-process', why: 'already started through sudo' };
  if (f.uid === 0) return { how: 'in-process', why: 'running as root' };
  if (!f.hasRun) return { how: 'in-process', why: 'no RUN steps: building needs no privileges' };
  if (!f.sudo) return { how: 'in-process', why: 'no password-less sudo: RUN steps run rootless' };
  return { how: 'sudo', sudo: f.sudo, why: 'RUN steps need root and the runner user is not root' };
}

/** True when any stage the target needs (on any target platform) has a RUN instruction. */
export function requestHasRun(request: BuildRequest): boolean {
  const host = hostPlatform();
  try {
    return (request.platforms.length ? request.platforms : [host]).some((targetPlatform) => {
      const plan = planBuild({
        dockerfile: request.dockerfile.contents, path: request.dockerfile.path, buildArgs: request.buildArgs, target: request.target, targetPlatform, buildPlatform: host,
        namedContext: contextLookup(request.namedContexts ?? []),
      });
      // A stage a named context replaces runs none of its steps.
      return plan.stages.some((s) => !s.overridden && s.instructions.some((i) => i.kind === 'RUN'));
    });
  } catch {
    return false; // the build itself reports the Dockerfile's error, in this process
  }
}

/** A sudo that runs without asking for a password, or undefined. */
export function passwordlessSudo(candidates = ['/usr/bin/sudo', '/bin/sudo', '/usr/local/bin/sudo']): string | undefined {
  const sudo = candidates.find((p) => existsSync(p));
  if (!sudo) return undefined;
  const r = spawnSync(sudo, ['-n', 'true'], { stdio: 'ignore', timeout: 10_000 });
  return r.status === 0 ? sudo : undefined;
}

/**
 * Runs `script` again as root through `sudo -n`, with `env` (plus the flag and the owner) as JSON on
 * its stdin; resolves to its exit code. Its stdout and stderr are ours, so its log and workflow
 * commands reach the runner unchanged.
 */
export function runElevated(sudo: string, script: string, env: Record<string, string | undefined>, owner: { uid: number; gid: number }): Promise<number> {
  const handed = { ...env, [elevatedFlag]: '1', [ownerVariable]: `${owner.uid}:${owner.gid}` };
  const child = spawn(sudo, ['-n', '/usr/bin/env', `${elevatedFlag}=1`, process.execPath, script], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(JSON.stringify(handed));
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.once('exit', (code, signal) => ok(code ?? (signal ? 128 : 1)));
  });
}

/** In the root process: the environment the entry handed over on stdin (replaces process.env's values). */
export function readHandedEnv(): Record<string, string> {
  const parsed = JSON.parse(readFileSync(0, 'utf8')) as unknown;
  if (!parsed || typeof parsed !== 'object') throw new Error('slipway: the elevated action process expects its environment as JSON on stdin');
  return parsed as Record<string, string>;
}

export function parseOwner(text: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(text ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}

function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel);
}

/**
 * Gives `paths` (recursively) and the directories between them and `root` back to `owner`, for
 * every entry owned by root. Paths outside `root` are left alone. Symlinks are changed themselves,
 * never followed. Returns how many entries changed owner.
 */
export function chownBack(paths: string[], root: string, owner: { uid: number; gid: number }): number {
  const top = resolve(root);
  let changed = 0;
  const fix = (p: string): void => {
    let st;
    try { st = lstatSync(p); } catch { return; }
    if (st.uid === 0 && (st.uid !== owner.uid || st.gid !== owner.gid)) {
      lchownSync(p, owner.uid, owner.gid);
      changed++;
    }
    if (st.isDirectory()) for (const name of readdirSync(p)) fix(join(p, name));
  };
  for (const raw of paths) {
    const p = resolve(top, raw);
    if (!inside(top, p)) continue;
    fix(p);
    for (let d = dirname(p); inside(top, d); d = dirname(d)) {
      const st = lstatSync(d, { throwIfNoEntry: false });
      if (st && st.uid === 0) { lchownSync(d, owner.uid, owner.gid); changed++; }
    }
  }
  return changed;
}

/** Where the request writes files or directories (outputs with a dest; absolute in the action's requests). */
export function writtenPaths(request: BuildRequest): string[] {
  return request.outputs.flatMap((o) => ('dest' in o ? [o.dest] : []));
}
