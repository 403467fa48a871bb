// What every step module works with (the StepContext), and the state a step leaves behind.
import type { BuildPlan, EvaluatedStep, PlannedStage } from '../../dockerfile/index.ts';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../../oci/index.ts';
import type { LayerRef } from '../layers.ts';
import type { BuildSession } from '../session.ts';
import type { MadeEntries, StageState, StepResult, Writing } from '../state.ts';
import type { LayerOptions } from '../step-cache.ts';
import { LayerInWriting, WriteBehind } from '../write-behind.ts';

/** Runs (once) the stage a step refers to, e.g. by `COPY --from` or a bind mount. */
export type StageRunner = (plan: BuildPlan, stage: PlannedStage) => Promise<StageState>;

/** Everything one step works with. */
export interface StepContext {
  session: BuildSession;
  stages: StageRunner;
  plan: BuildPlan;
  stage: PlannedStage;
  /** The stage's state before this step. */
  state: StageState;
  step: EvaluatedStep;
  /** Proxy build args: RUN sees them, the image and the cache key never do. */
  proxyEnv: Map<string, string>;
}

const buildkitComment = 'buildkit.dockerfile.v0';

/**
 * `created` of a history entry: SOURCE_DATE_EPOCH when set; else when the step first ran (from its
 * cache record) — for a metadata step, the entry before it — so a fully cached rebuild gives the
 * same image digest, as BuildKit's does.
 */
function historyCreated(session: BuildSession, state: StageState, stepCreated: string | undefined): string {
  if (session.request.sourceDateEpoch !== undefined) return session.created;
  return stepCreated ?? state.config.history?.at(-1)?.created ?? session.created;
}

/**
 * The state after `step`: its layer (if any) appended, its history entry, its config. Layers still
 * being written carry on (`writing`); a layer on top of them that no RUN upper dir holds leaves the
 * state's lower dirs unknown. Their diffIDs enter `config.rootfs` when the state is settled.
 */
export function withStep(ctx: StepContext, made: { key: string; layer?: LayerRef; config?: ContainerConfig; created?: string; writing?: Writing }): StageState {
  const { session, state, step } = ctx;
  const { layer } = made;
  const writing = made.writing ?? (state.writing && layer ? { ...state.writing, lowers: undefined } : state.writing);
  const history: HistoryEntry = { created: historyCreated(session, state, made.created), created_by: step.createdBy, comment: buildkitComment };
  if (!layer) history.empty_layer = true;
  const next: ImageConfig = {
    ...state.config,
    config: made.config ?? state.config.config,
    rootfs: { type: 'layers', diff_ids: layer && !writing ? [...state.config.rootfs.diff_ids, layer.diffID] : state.config.rootfs.diff_ids },
    history: step.createdBy === undefined ? state.config.history : [...(state.config.history ?? []), history],
  };
  return { platform: state.platform, config: next, layers: layer ? [...state.layers, layer] : state.layers, key: made.key, ...(writing ? { writing } : {}) };
}

/**
 * The step's layer through the step cache, written behind the step when what `make` made comes with
 * overlay lower dirs (a RUN on overlay, a COPY before a RUN): the result then comes as soon as
 * `make` is done, its layer a LayerInWriting, and the stage's next RUN may start on those dirs. A
 * cached step, or one made without lower dirs, waits for its layer.
 */
export async function layerBehind(ctx: StepContext, key: string, make: (behind: WriteBehind) => Promise<MadeEntries>, options: LayerOptions): Promise<StepResult> {
  const { session } = ctx;
  const behind = ctx.state.writing?.behind ?? new WriteBehind();
  let told: (m: { made: MadeEntries; key: string }) => void = () => undefined;
  const early = new Promise<{ made: MadeEntries; key: string }>((resolve) => { told = resolve; });
  const result = session.steps.layer(key, () => make(behind), { ...options, made: (made, key) => told({ made, key }) });
  const first = await Promise.race([result, early]);
  const lowers = 'made' in first ? first.made.lowers : undefined;
  if (!('made' in first) || !lowers) return result;
  behind.add(result);
  const layer = new LayerInWriting(result.then((r) => r.layer!));
  return { key: first.key, cached: false, created: session.created, layer, writing: { behind, lowers: lowers.dirs, unmounted: lowers.unmounted } };
}
