// RUN --mount: what each mount adds to the step's key, and each mount as the runtime takes it —
// binds of the context or another state, cache dirs that persist, tmpfs, secrets (written to a
// private file, never the rootfs), ssh agents (a socket of ours per mount, bound in for the step only).
// rw binds write into a private copy, as BuildKit discards them.
import { chmod, chown, cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mount } from '../../dockerfile/index.ts';
import { UserError } from '../../errors.ts';
import { checksumEntries, planCopy, prepareOverlay, resolveInRoot } from '../../fs/index.ts';
import type { StepMount } from '../../runtime/index.ts';
import { serveAgent } from '../../ssh/index.ts';
import { mountKeyPart } from '../keys.ts';
import type { StepContext } from './context.ts';
import { bindRoot, sourceTree } from './sources.ts';

/** What a mount contributes to the RUN's cache key: its options, and the content of a bound source. */
export async function mountKey(ctx: StepContext, m: Mount): Promise<unknown> {
  // A missing required agent fails before the cache is asked, as the step could never run here.
  if (m.type === 'ssh' && m.required && !ctx.session.request.ssh.some((s) => s.id === m.id)) throw missingSsh(m.id);
  if (m.type !== 'bind') return mountKeyPart(m);
  const tree = await sourceTree(ctx, m.from || undefined);
  const planned = await planCopy({ sources: [m.source || '.'], dest: '/m/', from: tree, mtime: 0 });
  try {
    return mountKeyPart(m, await checksumEntries(planned.entries, { hashes: ctx.session.fileHashes() }));
  } finally {
    await planned.cleanup();
  }
}

/** What one step's mounts hold while it runs: its scratch dir, and what to release and undo after. */
export interface MountScope {
  scratch: string;
  /** Env entries a secret mount with `env=` adds, and SSH_AUTH_SOCK for the first ssh mount. */
  env: string[];
  releases: (() => void)[];
  cleanups: (() => Promise<void>)[];
}

/** One RUN --mount as the runtime takes it; undefined when it mounts nothing (an absent optional secret). */
export async function stepMount(ctx: StepContext, m: Mount, scope: MountScope): Promise<StepMount | undefined> {
  const { session } = ctx;
  switch (m.type) {
    case 'bind': {
      const root = m.from ? await bindRoot(ctx, m.from) : await session.contextCopy();
      const source = join(root, resolveInRoot(root, m.source || '/'));
      if (m.readOnly) return { type: 'bind', source, target: m.target, readonly: true };
      // rw: the step may write, but as in BuildKit its writes are thrown away — into a private copy.
      return { type: 'bind', source: await writableCopy(source, scope), target: m.target, readonly: false };
    }
    case 'cache': {
      if (m.from || (m.source && m.source !== '/')) {
        throw new UserError('RUN --mount=type=cache with from= or source= is not supported by slipway', { hint: 'drop from=/source=; the cache starts empty and persists between builds' });
      }
      const id = m.id || m.target;
      if (m.sharing !== 'locked') { // locked ids are already held by the step
        const use = await session.cacheMounts.use(id, m.sharing);
        scope.releases.push(use.release);
        if (m.sharing === 'private' && use.busy) return { type: 'cache', source: await mkdtemp(join(scope.scratch, 'cache-private-')), target: m.target };
      }
      const { dir, created } = await session.cacheMounts.dir(id);
      if (created) {
        await chmod(dir, m.mode);
        await chown(dir, m.uid, m.gid).catch(() => undefined);
      }
      return { type: 'cache', source: dir, target: m.target };
    }
    case 'tmpfs':
      return { type: 'tmpfs', target: m.target, size: m.size };
    case 'secret': {
      const secret = session.secret(m.id);
      if (!secret) {
        if (m.required) throw new UserError(`secret "${m.id}" is required by RUN --mount=type=secret but was not given`, { hint: `pass --secret id=${m.id},src=FILE (or the secrets input)` });
        return undefined;
      }
      if (m.env) scope.env.push(`${m.env}=${secret.toString('utf8')}`);
      if (m.env && !m.target) return undefined;
      const file = join(scope.scratch, `secret-${m.id.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
      await writeFile(file, secret, { mode: 0o600 });
      return { type: 'secret', source: file, target: m.target || `/run/secrets/${m.id}`, mode: m.mode, uid: m.uid, gid: m.gid };
    }
    case 'ssh': {
      const spec = session.request.ssh.find((s) => s.id === m.id);
      if (!spec) {
        if (m.required) throw missingSsh(m.id);
        return undefined;
      }
      // Its own short directory: a unix socket path has room for 107 bytes only.
      const dir = await mkdtemp(join(tmpdir(), 'slipway-ssh-'));
      await chmod(dir, 0o711);
      scope.cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const agent = await serveAgent(spec.source, join(dir, 'agent.sock'), { mode: m.mode, uid: m.uid, gid: m.gid });
      scope.cleanups.push(agent.close);
      // As BuildKit: the step's SSH_AUTH_SOCK is the first ssh mount's target, unless ENV set one.
      const has = (env: string[]) => env.some((e) => e.startsWith('SSH_AUTH_SOCK='));
      if (!has(ctx.step.env ?? []) && !has(scope.env)) scope.env.push(`SSH_AUTH_SOCK=${m.target}`);
      return { type: 'bind', source: agent.path, target: m.target, readonly: false };
    }
  }
}

function missingSsh(id: string): UserError {
  return new UserError(`ssh agent "${id}" is required by RUN --mount=type=ssh but was not given`, { hint: id === 'default' ? 'pass --ssh default (the agent at $SSH_AUTH_SOCK), or the ssh input' : `pass --ssh ${id}=SOCKET_OR_KEYFILE (or the ssh input)` });
}

/** A writable view of `source` whose writes never reach it: an overlay where one mounts, else a copy. */
async function writableCopy(source: string, scope: MountScope): Promise<string> {
  const isDir = (await stat(source).catch(() => undefined))?.isDirectory() ?? true;
  if (isDir) {
    try {
      const mount = await prepareOverlay([source], join(scope.scratch, 'rw-mounts'));
      scope.cleanups.push(mount.cleanup);
      return mount.mergedDir;
    } catch {
      // no overlay here (rootless): fall through to a copy
    }
  }
  const copy = join(scope.scratch, `rw-${scope.cleanups.length}-${Math.random().toString(36).slice(2)}`);
  await cp(source, copy, { recursive: true, verbatimSymlinks: true }).catch(async () => mkdir(copy, { recursive: true }));
  return copy;
}
