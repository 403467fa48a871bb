// Users and groups from an image's /etc/passwd and /etc/group, for `--chown=name` and `USER name`.
import { UserError } from '../errors.ts';

export interface IdentityFiles {
  passwd?: string;
  group?: string;
}

function findLine(file: string | undefined, name: string): string[] | undefined {
  for (const line of (file ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[0] === name) return f;
  }
  return undefined;
}

const numeric = /^[0-9]+$/;

/** A user name or number → uid and its primary gid (a bare number uses itself as the gid, as BuildKit). */
export function lookupUser(user: string, files: IdentityFiles): { uid: number; gid: number } {
  if (numeric.test(user)) return { uid: Number(user), gid: Number(user) };
  const f = findLine(files.passwd, user);
  if (!f || !numeric.test(f[2]) || !numeric.test(f[3] ?? '')) {
    throw new UserError(`unable to find user ${user} in the image's /etc/passwd`, { hint: 'use a numeric uid, or create the user in an earlier step' });
  }
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function lookupGroup(group: string, files: IdentityFiles): number {
  if (numeric.test(group)) return Number(group);
  const f = findLine(files.group, group);
  if (!f || !numeric.test(f[2])) throw new UserError(`unable to find group ${group} in the image's /etc/group`, { hint: 'use a numeric gid, or create the group in an earlier step' });
  return Number(f[2]);
}

/** `--chown=user[:group]` → numeric owner. */
export function resolveChown(spec: string, files: IdentityFiles): { uid: number; gid: number } {
  const [user, group, extra] = spec.split(':');
  if (extra !== undefined || user === '' || group === '') throw new UserError(`invalid --chown value ${JSON.stringify(spec)}`, { hint: 'use user, user:group, uid or uid:gid' });
  const u = lookupUser(user, files);
  return group === undefined ? u : { uid: u.uid, gid: lookupGroup(group, files) };
}
