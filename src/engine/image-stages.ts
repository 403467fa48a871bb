// Which stages' layers the built images hold: each target stage and the stages it is FROM, down
// the chain. Their layers are compressed and sent ahead of the push; the others' layers never
// leave the cache dir, so they are written uncompressed (BuildKit compresses only what it exports).
import type { BuildPlan, PlannedStage } from '../dockerfile/index.ts';
import { formatPlatform } from '../oci/index.ts';

export type StageId = string;

export function stageId(plan: BuildPlan, stage: PlannedStage): StageId {
  return `${formatPlatform(plan.targetPlatform)}|${stage.index}`;
}

export function stagesInImages(plans: BuildPlan[]): Set<StageId> {
  const ids = new Set<StageId>();
  for (const plan of plans) {
    for (let s: PlannedStage | undefined = plan.target; s; s = s.base.kind === 'stage' ? plan.allStages[s.base.index] : undefined) ids.add(stageId(plan, s));
  }
  return ids;
}
