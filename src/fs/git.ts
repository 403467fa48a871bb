// ADD (and build contexts) from a git repository, as BuildKit's git source: `<url>[#<ref>[:<subdir>]]`
// or `<url>?ref=…&subdir=…` for https, ssh (git@host:path) and git:// remotes; a shallow fetch of the ref with the system's git
// (and of its submodules), its .git directory dropped unless --keep-git-dir.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { resolveInRoot } from './paths.ts';
import { dirTree, type SourceTree } from './tree.ts';

export interface GitSource {
  remote: string;
  ref?: string;
  subdir?: string;
  /** `?keep-git-dir=true`: keep the .git directory. */
  keepGitDir?: boolean;
  /** `?checksum=…` (or `?commit=…`) or `ADD --checksum`: the commit (or a prefix of it) the ref must resolve to. */
  checksum?: string;
  /** `?submodules=false`: leave the submodules out (by default they are checked out, depth 1). */
  submodules?: boolean;
}

const queryKeys = new Set(['ref', 'branch', 'tag', 'subdir', 'keep-git-dir', 'checksum', 'commit', 'submodules']);

/** A query flag: `true`/`false` (as Go's ParseBool), or no value for true. */
function queryBool(source: string, key: string, value: string): boolean {
  if (value === '') return true;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new UserError(`git source ${source}: ${key}=${value} is not a boolean`, { hint: `write ${key}=true or ${key}=false` });
}

/** The ref of the query form: `ref=`, or `tag=` (refs/tags/…) or `branch=` (refs/heads/…), which must agree. */
function queryRef(source: string, params: URLSearchParams): string | undefined {
  let ref = params.get('ref') || undefined;
  const tag = params.get('tag');
  const branch = params.get('branch');
  if (tag && branch) throw new UserError(`git source ${source}: branch conflicts with tag`, { hint: 'give either tag= or branch=' });
  for (const [name, prefix] of [[tag, 'refs/tags/'], [branch, 'refs/heads/']] as const) {
    if (!name) continue;
    const full = name.startsWith(prefix) ? name : prefix + name;
    if (ref && ref !== full) throw new UserError(`git source ${source}: ref conflicts: "${ref}" vs "${full}"`, { hint: 'give the ref once' });
    ref = full;
  }
  return ref;
}

/**
 * The git sources BuildKit recognises (ADD, build contexts); undefined for anything else. Both forms:
 * `<url>#<ref>:<subdir>` and the query form `<url>?ref=…&subdir=…&keep-git-dir=…&checksum=…&submodules=…`
 * (`branch=`/`tag=` name the ref too, as refs/heads/… and refs/tags/…; `commit=` is `checksum=`). `file://` remotes only with `allowFile` (contexts, not ADD).
 */
export function parseGitSource(source: string, opts: { allowFile?: boolean } = {}): GitSource | undefined {
  const isGit = /^git@[^:]+:/.test(source) || /^(git|ssh):\/\//.test(source) || /^https?:\/\/[^#?]+\.git([?#].*)?$/.test(source)
    || (Boolean(opts.allowFile) && /^file:\/\/\//.test(source));
  if (!isGit) return undefined;
  const hash = source.indexOf('#');
  let remote = hash < 0 ? source : source.slice(0, hash);
  const fragment = hash < 0 ? '' : source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  let ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  let subdir = colon < 0 ? undefined : fragment.slice(colon + 1) || undefined;
  const out: GitSource = { remote };
  const q = remote.indexOf('?');
  if (q >= 0 && !remote.startsWith('git@')) {
    const params = new URLSearchParams(remote.slice(q + 1));
    remote = remote.slice(0, q);
    out.remote = remote;
    for (const k of new Set(params.keys())) {
      if (!queryKeys.has(k)) throw new UserError(`git source ${source}: unknown query parameter "${k}"`, { hint: `expected ${[...queryKeys].join(', ')}` });
      if (params.getAll(k).length > 1) throw new UserError(`git source ${source}: query "${k}" has multiple values`);
      if (params.get(k) === '' && k !== 'keep-git-dir' && k !== 'submodules') throw new UserError(`git source ${source}: query "${k}" has no value`);
    }
    if (fragment) throw new UserError(`git source ${source}: give the ref and subdir either after # or as ?ref=…&subdir=…, not both`);
    ref = queryRef(source, params);
    subdir = params.get('subdir') ?? undefined;
    const keep = params.get('keep-git-dir');
    if (keep !== null) out.keepGitDir = queryBool(source, 'keep-git-dir', keep);
    const submodules = params.get('submodules');
    if (submodules !== null) out.submodules = queryBool(source, 'submodules', submodules);
    const sum = params.get('checksum') ?? params.get('commit');
    if (sum !== null) out.checksum = sum;
  }
  if (ref) out.ref = ref;
  if (subdir) out.subdir = subdir;
  return out;
}

export interface GitCheckout {
  tree: SourceTree;
  /** The checked-out directory (the subdir, when one was asked for). */
  dir: string;
  cleanup(): Promise<void>;
}

/** Fetches `ref` (default: the remote's HEAD) of `remote`, depth 1, into a fresh directory under `dir`. */
export interface FetchGitOptions {
  dir: string;
  keepGitDir: boolean;
  timeoutMs?: number;
  /** What asked, for errors (default "ADD"). */
  what?: string;
  /** Use the user's git configuration (credential helpers, url rewrites): the context of their own build. */
  userConfig?: boolean;
}

export async function fetchGit(source: GitSource, opts: FetchGitOptions): Promise<GitCheckout> {
  const what = opts.what ?? 'ADD';
  if (source.checksum !== undefined && !/^[0-9a-fA-F]+$/.test(source.checksum)) {
    throw new UserError(`${what}: invalid checksum ${source.checksum} for Git URL, expected hex commit hash`, { hint: 'give the commit (or a prefix of it) the ref must resolve to' });
  }
  // A ref or remote that reads as an option would be one to git (BuildKit refuses them too).
  if (source.remote.startsWith('-') || source.ref?.startsWith('-')) {
    throw new UserError(`${what}: invalid git source ${source.remote}${source.ref ? '#' + source.ref : ''}: a remote or ref may not start with "-"`);
  }
  const work = await mkdtemp(join(opts.dir, 'git-'));
  const repo = join(work, 'repo');
  const git = (args: string[]) => promisify(execFile)('git', args, {
    timeout: opts.timeoutMs ?? 300_000,
    // Never wait for a password prompt; a Dockerfile's ADD never reads the user's or system git config.
    env: opts.userConfig ? { ...process.env, GIT_TERMINAL_PROMPT: '0' } : { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  try {
    await git(['init', '-q', repo]);
    try {
      await git(['-C', repo, 'fetch', '-q', '--depth', '1', '--no-tags', source.remote, source.ref ?? 'HEAD']);
    } catch (e) {
      const why = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop();
      throw new UserError(`${what}: cannot fetch ${source.ref ?? 'HEAD'} of ${source.remote}: ${why}`, {
        hint: opts.userConfig ? 'check the URL and the ref; private repositories use the credentials git is configured with (or the ssh agent for git@…)' : 'check the URL and the ref after #; private repositories are not supported',
      });
    }
    if (source.checksum) {
      // As BuildKit: a prefix of the fetched object, or of the commit an annotated tag points to.
      const { stdout } = await git(['-C', repo, 'rev-parse', 'FETCH_HEAD', 'FETCH_HEAD^{commit}']);
      const [object, commit] = stdout.trim().split('\n');
      if (!object.startsWith(source.checksum) && !commit.startsWith(source.checksum)) {
        const got = object === commit ? commit : `${commit} (tag ${object})`;
        throw new UserError(`${what}: ${source.ref ?? 'HEAD'} of ${source.remote} is commit ${got}, expected ${source.checksum}`, { hint: 'the ref moved, or the checksum value is wrong' });
      }
    }
    await git(['-C', repo, '-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD']);
    // Submodules too, recursively and shallow, as BuildKit's git source (unless submodules=false).
    if (source.submodules !== false && existsSync(join(repo, '.gitmodules'))) {
      try {
        // A Dockerfile's ADD never lets a submodule read a host path (file://); the user's own context may.
        await git(['-C', repo, ...(opts.userConfig ? [] : ['-c', 'protocol.file.allow=never']), 'submodule', 'update', '-q', '--init', '--recursive', '--depth=1']);
      } catch (e) {
        const why = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop();
        throw new UserError(`${what}: failed to update submodules for ${source.remote}: ${why}`, { hint: 'check the submodule URLs in .gitmodules, or add ?submodules=false to leave them out' });
      }
    }
    if (!opts.keepGitDir && !source.keepGitDir) await rm(join(repo, '.git'), { recursive: true, force: true });
    const root = source.subdir ? join(repo, resolveInRoot(repo, source.subdir)) : repo;
    return { tree: dirTree(root, { describe: `git ${source.remote}` }), dir: root, cleanup: () => rm(work, { recursive: true, force: true }) };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
