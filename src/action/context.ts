// The `context` input as the CLI's CONTEXT argument: a directory in the workspace, or a git URL or
// tarball URL that launch/ fetches into the cache dir's tmp/ first. The fetch happens once, in the
// runner user's process (so git uses that user's credentials); what follows — including the process
// started through sudo — sees a local directory in `context` and `file`.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { isRemoteContext, prepareContext } from '../launch/index.ts';
import { actionCacheDir, type InputReader } from './inputs.ts';

export interface ActionContext {
  /** The inputs with `context` and `file` pointing at the local copy. */
  input: InputReader;
  /** Those two inputs as INPUT_* variables, for the process started through sudo. */
  env: Record<string, string>;
  cleanup(): Promise<void>;
}

export async function prepareActionContext(input: InputReader, env: Record<string, string | undefined>, workspace: string): Promise<ActionContext> {
  const context = input('context').trim() || '.';
  if (!isRemoteContext(context)) return { input, env: {}, cleanup: async () => undefined };
  if (context === '-') throw new UserError('input "context" is "-", but an action step has no standard input', { hint: 'give a directory of the workspace, a git URL or a tarball URL' });
  const file = input('file').trim() || undefined;
  const prepared = await prepareContext({ context, file, cacheDir: actionCacheDir(env), cwd: workspace, env });
  try {
    let dockerfile = prepared.file;
    if (prepared.dockerfile !== undefined) {
      // A URL of a plain Dockerfile: keep it next to (not inside) the empty context.
      const dir = await mkdtemp(join(prepared.context, '..', 'dockerfile-'));
      dockerfile = join(dir, 'Dockerfile');
      await writeFile(dockerfile, prepared.dockerfile);
    }
    const local: Record<string, string> = { context: prepared.context, file: dockerfile ?? '' };
    return {
      input: (name) => local[name] ?? input(name),
      env: { INPUT_CONTEXT: local.context, INPUT_FILE: local.file },
      cleanup: prepared.cleanup,
    };
  } catch (e) {
    await prepared.cleanup();
    throw e;
  }
}
