/**
 * engine/steps: one module per instruction family, as BuildKit's dockerfile2llb/convert_*.go —
 * metadata (config-only instructions), workdir, copy (COPY/ADD), run (+ mounts). Each takes a
 * StepContext and gives the next StageState; the step cache and the session are its services.
 * Imports the engine's shared modules (state, keys, session, step-cache) and other folders' doors.
 */
import { DockerfileError } from '../../dockerfile/index.ts';
import { UserError } from '../../errors.ts';
import type { StageState, StepResult } from '../state.ts';
import { LayerInWriting } from '../write-behind.ts';
import type { StepContext } from './context.ts';
import { withStep } from './context.ts';
import { copyInstruction } from './copy.ts';
import { metadataStep } from './metadata.ts';
import { runInstruction } from './run.ts';
import { workdirStep } from './workdir.ts';

/** Runs one step; `title` is what progress shows, `cmdSet` whether the stage set CMD already. */
export async function executeStep(ctx: StepContext, shown: { title: string; cmdSet: boolean }): Promise<StageState> {
  const ins = ctx.step.expanded;
  // The frontend says which steps make no layer (config-only instructions, `WORKDIR /`).
  if (ctx.step.emptyLayer) return metadataStep(ctx, ins, shown.cmdSet);
  if (ins.kind === 'WORKDIR') return workdirStep(ctx, ins, shown.cmdSet);
  if (ins.kind !== 'RUN' && ins.kind !== 'COPY' && ins.kind !== 'ADD') throw new Error(`${ins.kind} has no layer step`);
  const { session } = ctx;
  const reporter = session.progress.step(shown.title);
  try {
    const result: StepResult = ins.kind === 'RUN'
      ? await runInstruction(ctx, ins, reporter.log.bind(reporter))
      : await copyInstruction(ctx, ins);
    if (result.cached) {
      reporter.cached();
      session.stats.cached++;
    } else {
      reporter.done();
      session.stats.run++;
      const layer = result.layer;
      // A layer written behind the next steps: sent ahead once written; a failure stops the build.
      if (layer instanceof LayerInWriting) layer.done.then((l) => session.staging?.made(ctx.plan, ctx.stage, l), (e: unknown) => session.abort(located(e, ctx)));
      else if (layer) session.staging?.made(ctx.plan, ctx.stage, layer);
    }
    return withStep(ctx, result);
  } catch (e) {
    reporter.failed(e);
    throw located(e, ctx);
  }
}

/** A step's UserError says where the step is in the Dockerfile, as the frontend's errors do. */
function located(e: unknown, { plan, step }: StepContext): unknown {
  if (!(e instanceof UserError) || e instanceof DockerfileError) return e;
  const where = `${plan.definition.file}:${step.source.range.startLine}`;
  if (e.message.startsWith(where)) return e;
  return new UserError(`${where}: ${e.message}`, { hint: e.hint, cause: e });
}
export type { StepContext, StageRunner } from './context.ts';
