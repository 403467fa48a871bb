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

/**
 * `--chown=user[:group]` → numeric owner. `user:` (dockerfile 1.28, as chown(1)) is the user with
 * its default group: a name's primary gid from /etc/passwd, a bare uid's own number. An empty user
 * is uid 0, as BuildKit's llb.WithUser reads it (`:group` → 0 and that group).
 */
export function resolveChown(spec: string, files: IdentityFiles): { uid: number; gid: number } {
  const [user, group, extra] = spec.split(':');
  if (extra !== undefined || spec === '') throw new UserError(`invalid --chown value ${JSON.stringify(spec)}`, { hint: 'use user, user:, user:group, uid or uid:gid' });
  // `root` is 0 without a lookup, for the user and the group (llb's parseUID): it works on scratch.
  const id = (part: string) => (part === 'root' ? '0' : part);
  const u = user === '' ? { uid: 0, gid: 0 } : lookupUser(id(user), files);
  return group === undefined || group === '' ? u : { uid: u.uid, gid: lookupGroup(id(group), files) };
}

/**
 * The user a RUN step runs as, as runc's GetExecUser resolves `USER user[:group]`: a name must be in
 * /etc/passwd; a number not in it runs with gid 0; groups that list the user are supplementary.
 */
export function lookupExecUser(spec: string, files: IdentityFiles): { uid: number; gid: number; additionalGids: number[] } {
  const [user, group] = spec.split(':');
  const entries = (files.passwd ?? '').split('\n').map((l) => l.split(':')).filter((f) => f.length >= 4 && numeric.test(f[2]) && numeric.test(f[3]));
  const entry = numeric.test(user) ? entries.find((f) => f[2] === user) : entries.find((f) => f[0] === user);
  if (!entry && !numeric.test(user)) {
    throw new UserError(`unable to find user ${user}: no matching entries in the image's /etc/passwd`, { hint: 'use a numeric uid, or create the user in an earlier step' });
  }
  const uid = Number(entry ? entry[2] : user);
  const gid = group !== undefined && group !== '' ? lookupGroup(group, files) : entry ? Number(entry[3]) : 0;
  const name = entry?.[0];
  const additionalGids: number[] = [];
  if (name) {
    for (const line of (files.group ?? '').split('\n')) {
      const f = line.split(':');
      if (f.length >= 4 && numeric.test(f[2]) && f[3].split(',').includes(name) && !additionalGids.includes(Number(f[2]))) additionalGids.push(Number(f[2]));
    }
  }
  return { uid, gid, additionalGids };
}
