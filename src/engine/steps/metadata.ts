// Instructions that change only the image config (ENV, LABEL, CMD, ENTRYPOINT, USER, EXPOSE, …):
// no layer, an empty_layer history entry, and a state key that chains the expanded instruction.
import type { ExpandedInstruction } from '../../dockerfile/index.ts';
import { applyInstruction } from '../config.ts';
import { metadataKey } from '../keys.ts';
import type { StageState } from '../state.ts';
import { withStep, type StepContext } from './context.ts';

export function metadataStep(ctx: StepContext, ins: ExpandedInstruction, cmdSet: boolean): StageState {
  const { state, step } = ctx;
  const next = withStep(ctx, { key: metadataKey(state.key, ins, step.createdBy), config: applyInstruction(state.config.config ?? {}, ins, cmdSet) });
  if (ins.kind === 'MAINTAINER') next.config.author = ins.maintainer;
  return next;
}
