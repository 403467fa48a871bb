// Where a step reads files from besides its own stage: the build context, another stage (run once,
// by the scheduler), an image, or scratch — as a state, a directory, or a source tree.
import { resolveStageRef } from '../../dockerfile/index.ts';
import { UserError } from '../../errors.ts';
import { parseReference } from '../../registry/index.ts';
import { dirTree, type SourceTree } from '../../fs/index.ts';
import { scratchState, type StageState } from '../state.ts';
import type { StepContext } from './context.ts';

/** The state `--from=NAME` names: a stage of this Dockerfile, an image, or scratch. */
export async function sourceState({ session, stages, plan, state }: StepContext, from: string): Promise<StageState> {
  const ref = resolveStageRef(plan.definition, from);
  if (ref.kind === 'stage') return stages(plan, plan.allStages[ref.index]);
  if (ref.kind === 'scratch') return scratchState(state.platform);
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
  const state = await sourceState(ctx, from);
  const dir = await ctx.session.rootfsOf(state);
  // Without root the files on disk could not be chowned: their owners come from the layers' headers.
  const view = process.getuid?.() !== 0 && state.layers.length ? await ctx.session.layers.view(state.layers) : undefined;
  return dirTree(dir, {
    describe: resolveStageRef(ctx.plan.definition, from).kind === 'image' ? `image ${from}` : `stage ${from}`,
    keepOwners: true, owners: view ? (rel) => view.stat(rel) : undefined,
  });
}
