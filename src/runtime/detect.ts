// Finding the OCI runtime binary (runc or crun) and checking that we can run containers at all:
// as root, or rootless where unprivileged user namespaces are allowed.
import { accessSync, constants, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, join } from 'node:path';
import { UserError } from '../errors.ts';

export interface RuntimeInfo {
  path: string;
  name: 'runc' | 'crun';
}

/** Where we look for a runtime named without a path (we do not read PATH from the environment). */
export const defaultSearchPath = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const installHint = 'install runc or crun (Debian/Ubuntu: `apt-get install runc`), or pass the path of the binary';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function runtimeName(path: string): 'runc' | 'crun' | undefined {
  const b = basename(path);
  if (b.includes('crun')) return 'crun';
  if (b.includes('runc')) return 'runc';
  return undefined;
}

export type RuntimeName = RuntimeInfo['name'];

/**
 * The runtime to use: `preferred` (a name or a path) when given, else the first of `order` that is
 * installed. Throws a UserError naming what to install when none is found.
 */
export function detectRuntime(preferred?: string, searchPath: string[] = defaultSearchPath, order: readonly RuntimeName[] = ['runc', 'crun']): RuntimeInfo {
  const find = (name: string): string | undefined => {
    if (name.includes('/')) return executable(name) ? name : undefined;
    return searchPath.map((d) => join(d, name)).find(executable);
  };
  if (preferred !== undefined && preferred !== '') {
    const name = runtimeName(preferred);
    if (!name) throw new UserError(`unknown OCI runtime "${preferred}": slipway runs steps with runc or crun`, { hint: installHint });
    const path = find(preferred);
    if (!path) throw new UserError(`OCI runtime "${preferred}" not found${preferred.includes('/') ? '' : ` in ${searchPath.join(':')}`}`, { hint: installHint });
    return { path, name };
  }
  for (const name of order) {
    const path = find(name);
    if (path) return { path, name };
  }
  throw new UserError('this build has RUN steps but neither runc nor crun is installed', { hint: installHint });
}

let userNamespacesChecked: boolean | undefined;

/** Throws a UserError saying what to enable when a non-root user cannot create user namespaces. */
export function checkRootless(): void {
  if (userNamespacesChecked === undefined) {
    const r = spawnSync('unshare', ['--user', '--map-root-user', 'true'], { stdio: 'ignore', timeout: 10_000 });
    userNamespacesChecked = r.status === 0;
  }
  if (userNamespacesChecked) return;
  let why = 'unprivileged user namespaces are not available';
  try {
    if (readFileSync('/proc/sys/kernel/unprivileged_userns_clone', 'utf8').trim() === '0') why = 'unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0)';
  } catch { /* not every kernel has this knob */ }
  try {
    if (readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim() === '0') why = 'user namespaces are disabled (user.max_user_namespaces=0)';
  } catch { /* idem */ }
  throw new UserError(`cannot run RUN steps: not root, and ${why}`, {
    hint: 'run as root (e.g. sudo), or enable user namespaces: `sysctl -w kernel.unprivileged_userns_clone=1 user.max_user_namespaces=15000` ' +
      '(on Ubuntu 24.04 also `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`); `unshare` comes with util-linux. Builds without RUN need no privileges.',
  });
}
