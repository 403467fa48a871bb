// ADD from a git repository, as BuildKit's git source: `<url>[#<ref>[:<subdir>]]` for https, ssh
// (git@host:path) and git:// remotes; a shallow fetch of the ref with the system's git, its .git
// directory dropped unless --keep-git-dir.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UserError } from '../errors.ts';
import { resolveInRoot } from './paths.ts';
import { dirTree, type SourceTree } from './tree.ts';

const run = promisify(execFile);

export interface GitSource { remote: string; ref?: string; subdir?: string }

/** The git sources BuildKit recognises in ADD; undefined for anything else. */
export function parseGitSource(source: string): GitSource | undefined {
  const isGit = /^git@[^:]+:/.test(source) || /^(git|ssh):\/\//.test(source) || /^https?:\/\/[^#]+\.git(#.*)?$/.test(source);
  if (!isGit) return undefined;
  const hash = source.indexOf('#');
  const remote = hash < 0 ? source : source.slice(0, hash);
  const fragment = hash < 0 ? '' : source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = (colon < 0 ? fragment : fragment.slice(0, colon)) || undefined;
  const subdir = colon < 0 ? undefined : fragment.slice(colon + 1) || undefined;
  return { remote, ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) };
}

export interface GitCheckout { tree: SourceTree; cleanup(): Promise<void> }

/** Fetches `ref` (default: the remote's HEAD) of `remote`, depth 1, into a fresh directory under `dir`. */
export async function fetchGit(source: GitSource, opts: { dir: string; keepGitDir: boolean; timeoutMs?: number }): Promise<GitCheckout> {
  // A ref or remote that reads as an option would be one to git (BuildKit refuses them too).
  if (source.remote.startsWith('-') || source.ref?.startsWith('-')) {
    throw new UserError(`ADD: invalid git source ${source.remote}${source.ref ? '#' + source.ref : ''}: a remote or ref may not start with "-"`);
  }
  const work = await mkdtemp(join(opts.dir, 'git-'));
  const repo = join(work, 'repo');
  const git = (args: string[]) => run('git', args, {
    timeout: opts.timeoutMs ?? 300_000,
    // Never wait for a password prompt; never read the user's or system git config.
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
  try {
    await git(['init', '-q', repo]);
    try {
      await git(['-C', repo, 'fetch', '-q', '--depth', '1', '--no-tags', source.remote, source.ref ?? 'HEAD']);
    } catch (e) {
      const why = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').pop();
      throw new UserError(`ADD: cannot fetch ${source.ref ?? 'HEAD'} of ${source.remote}: ${why}`, { hint: 'check the URL and the ref after #; private repositories are not supported' });
    }
    await git(['-C', repo, '-c', 'advice.detachedHead=false', 'checkout', '-q', 'FETCH_HEAD']);
    if (!opts.keepGitDir) await rm(join(repo, '.git'), { recursive: true, force: true });
    const root = source.subdir ? join(repo, resolveInRoot(repo, source.subdir)) : repo;
    return { tree: dirTree(root, { describe: `git ${source.remote}` }), cleanup: () => rm(work, { recursive: true, force: true }) };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
