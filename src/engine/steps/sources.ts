// Where a step reads files from besides its own stage: the build context, another stage (run once,
// by the scheduler), a named context (`--build-context`, which wins over an image of its name and
// replaces a stage of its name), an image, or scratch — as a state, a directory, or a source tree.
import { resolveStageRef } from '../../dockerfile/index.ts';
import { UserError } from '../../errors.ts';
import { parseReference } from '../../registry/index.ts';
import { dirTree, type SourceTree } from '../../fs/index.ts';
import type { NamedContext } from '../../request/index.ts';
import { scratchState, type StageState } from '../state.ts';
import type { StepContext } from './context.ts';

/** The named context `--from=NAME` reads: one of its name, or the one that replaces the stage of its name. */
export function namedSource({ session, plan }: StepContext, from: string): NamedContext | undefined {
  const ref = resolveStageRef(plan.definition, from, plan.namedContext);
  if (ref.kind === 'context') return session.contexts.named(ref.name);
  if (ref.kind === 'stage' && plan.allStages[ref.index].overridden) return session.contexts.named(plan.allStages[ref.index].name!);
  return undefined;
}

/** A named context of files (a directory, git, http) that `--from=NAME` reads; its content keys the step. */
export function directorySource(ctx: StepContext, from: string | undefined): NamedContext | undefined {
  const named = from === undefined ? undefined : namedSource(ctx, from);
  return named && ctx.session.contexts.isDirectory(named) ? named : undefined;
}

/** The state `--from=NAME` names: a stage of this Dockerfile, a named context, an image, or scratch. */
export async function sourceState(ctx: StepContext, from: string): Promise<StageState> {
  const { session, stages, plan, state } = ctx;
  const ref = resolveStageRef(plan.definition, from, plan.namedContext);
  if (ref.kind === 'stage') return stages(plan, plan.allStages[ref.index]);
  if (ref.kind === 'scratch') return scratchState(state.platform);
  if (ref.kind === 'context') return session.contexts.state(session.contexts.named(ref.name), state.platform);
  // Not a stage: an image — or a typo of a stage name, which the error should say first.
  const names = plan.definition.stages.map((s) => s.name).filter((n): n is string => Boolean(n));
  const stagesText = names.length ? `stages: ${names.join(', ')}` : 'this Dockerfile names no stage';
  let image: string;
  try {
    image = parseReference(ref.ref).toString();
  } catch {
    throw new UserError(`no stage named "${from}" (${stagesText}), and "${from}" is not an image reference`, { hint: 'name a stage of this Dockerfile (FROM … AS NAME), an image, or scratch' });
  }
  try {
    return await session.imageState(ref.ref, state.platform);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    throw new UserError(`no stage named "${from}" (${stagesText}), and the image ${image} could not be pulled: ${e.message}`, {
      hint: 'name a stage of this Dockerfile (FROM … AS NAME), or an image that exists', cause: e,
    });
  }
}

/** The files COPY (or a bind mount) takes: the context after .dockerignore, or another state's files. */
export async function sourceTree(ctx: StepContext, from: string | undefined): Promise<SourceTree> {
  if (from === undefined) return ctx.session.contextTree();
  const dir = directorySource(ctx, from);
  if (dir) return ctx.session.contexts.tree(dir);
  const state = await sourceState(ctx, from);
  const root = await ctx.session.rootfsOf(state);
  // Without root the files on disk could not be chowned: their owners come from the layers' headers.
  const view = process.getuid?.() !== 0 && state.layers.length ? await ctx.session.layers.view(state.layers) : undefined;
  const kind = resolveStageRef(ctx.plan.definition, from, ctx.plan.namedContext).kind;
  return dirTree(root, {
    describe: kind === 'image' ? `image ${from}` : kind === 'context' ? `build context ${from}` : `stage ${from}`,
    keepOwners: true, owners: view ? (rel) => view.stat(rel) : undefined,
  });
}

/** The directory a `RUN --mount=type=bind,from=NAME` binds: a named directory context's own copy, or the state's files. */
export async function bindRoot(ctx: StepContext, from: string): Promise<string> {
  const dir = directorySource(ctx, from);
  return dir ? ctx.session.contexts.bindRoot(dir) : ctx.session.rootfsOf(await sourceState(ctx, from));
}
