// The build context as docker and buildx take it, made into a directory before the request is made:
// a local directory (as is), a git URL (`…repo.git#ref:subdir`, `git://…`, `git@host:repo`, the
// `?ref=…&subdir=…` form, `file:///…` remotes), an http(s) URL of a tarball (gzip, bzip2, xz, zstd)
// or of a plain Dockerfile, and `-` (a tar archive, or a Dockerfile, on standard input). A remote
// context goes into a fresh directory under the cache dir's tmp/, removed by `cleanup`.
//
// Where the Dockerfile is, as buildx/BuildKit's dockerui decide it: for a remote context, a relative
// `-f` names a file inside that context (its subdir for git), an absolute `-f` a local file, `-f -`
// standard input; a URL or stdin that is no archive is the Dockerfile itself, with an empty context.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { extractArchive, fetchGit, fetchRemote, isArchive, parseGitSource, resolveInRoot } from '../fs/index.ts';
import { defaultCacheDir } from '../request/index.ts';

export interface ContextInput {
  /** The CONTEXT argument (or the action's `context` input). */
  context: string;
  /** `-f`, as given. */
  file?: string;
  cacheDir?: string;
  cwd: string;
  env: Record<string, string | undefined>;
  /** Standard input, read whole (for `-`). */
  stdin?: () => Buffer;
}

export interface PreparedContext {
  /** The context directory and the Dockerfile path to hand to makeBuildRequest. */
  context: string;
  file?: string;
  /** Set when the Dockerfile came from standard input or a URL and is already read. */
  dockerfile?: string;
  /** What the context was, for messages (the URL, "standard input", or the directory). */
  describe: string;
  cleanup(): Promise<void>;
}

/** Whether CONTEXT is a remote (or stdin) context rather than a local directory. */
export function isRemoteContext(context: string): boolean {
  return context === '-' || /^[a-z][a-z0-9+.-]*:\/\//i.test(context) || /^git@[^:]+:/.test(context);
}

async function tempDir(input: ContextInput): Promise<string> {
  const cache = input.cacheDir ? resolve(input.cwd, input.cacheDir) : defaultCacheDir(input.env);
  const tmp = join(cache, 'tmp');
  await mkdir(tmp, { recursive: true });
  return mkdtemp(join(tmp, 'context-'));
}

/** The Dockerfile path for a context materialized at `dir`: `-f` relative to it, inside it. */
function dockerfileIn(dir: string, file: string | undefined): string | undefined {
  if (file === undefined || file === '-') return file;
  if (isAbsolute(file)) return file;
  return join(dir, resolveInRoot(dir, file));
}

/** Makes CONTEXT a directory (see the file's opening comment). */
export async function prepareContext(input: ContextInput): Promise<PreparedContext> {
  const { context } = input;
  if (!isRemoteContext(context)) return { context, file: input.file, describe: context, cleanup: async () => undefined };
  if (context === '-' && input.file === '-') {
    throw new UserError('the context and the Dockerfile cannot both be read from standard input', { hint: 'give the Dockerfile with -f PATH inside the tar archive, or pass a context directory' });
  }
  const work = await tempDir(input);
  const cleanup = () => rm(work, { recursive: true, force: true });
  try {
    const git = parseGitSource(context, { allowFile: true });
    if (git) {
      const checkout = await fetchGit(git, { dir: work, keepGitDir: false, what: 'build context', userConfig: true });
      const dir = checkout.dir;
      if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) {
        throw new UserError(`build context ${context}: the repository has no directory ${git.subdir}`, { hint: 'check the subdir after the ref (#ref:subdir or ?subdir=…)' });
      }
      return { context: dir, file: dockerfileIn(dir, input.file), describe: context, cleanup };
    }
    const dir = join(work, 'context');
    await mkdir(dir);
    let archive: string;
    let describe: string;
    if (context === '-') {
      if (!input.stdin) throw new UserError('the context "-" reads a tar archive from standard input, but none was given');
      archive = join(work, 'stdin');
      await writeFile(archive, input.stdin());
      describe = 'standard input';
    } else if (/^https?:\/\//.test(context)) {
      const got = await fetchRemote(context, { fallbackMtime: 0, dir: work }).catch((e: unknown) => {
        throw e instanceof UserError ? new UserError(e.message.replace(/^ADD: /, 'build context: '), { hint: e.hint }) : e;
      });
      archive = got.path;
      describe = context;
    } else {
      throw new UserError(`unsupported build context ${context}`, { hint: 'give a directory, a git URL (https://…/repo.git#ref:dir, git://…, git@host:repo), an http(s) URL of a tarball, or - for a tar archive on standard input' });
    }
    if (await isArchive({ path: archive })) {
      await extractArchive(archive, dir, describe);
      return { context: dir, file: dockerfileIn(dir, input.file), describe, cleanup };
    }
    // Not an archive: it is the Dockerfile, and the context is empty (docker build - < Dockerfile).
    if (input.file !== undefined) {
      throw new UserError(`build context ${describe} is a single file (no tar archive), so -f ${input.file} names nothing`, { hint: 'drop -f: the file itself is the Dockerfile' });
    }
    return { context: dir, dockerfile: await readFile(archive, 'utf8'), describe, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
