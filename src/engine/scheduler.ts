// Runs the stages a build needs, each once per platform however many stages or platforms ask for
// it: resolves its base (scratch, another stage, or an image — never extracted unless a step needs
// its files), then hands each instruction to its step module in order.
import { parseOnbuildTrigger, StageEvaluator, type BuildPlan, type PlannedStage } from '../dockerfile/index.ts';
import { formatPlatform, type ImageConfig } from '../oci/index.ts';
import { UserError } from '../errors.ts';
import { defaultPath } from '../runtime/index.ts';
import type { BuildSession } from './session.ts';
import { scratchState, type StageState } from './state.ts';
import { executeStep } from './steps/index.ts';
import { LayerInWriting } from './write-behind.ts';

export class StageScheduler {
  private readonly session: BuildSession;
  private readonly memo = new Map<string, Promise<StageState>>();

  constructor(session: BuildSession) {
    this.session = session;
  }

  /** Runs `stage` of `plan` once per platform. */
  readonly stage = (plan: BuildPlan, stage: PlannedStage): Promise<StageState> => {
    const id = `${formatPlatform(plan.targetPlatform)}|${stage.index}`;
    let p = this.memo.get(id);
    if (!p) {
      p = this.execute(plan, stage);
      this.memo.set(id, p);
    }
    return p;
  };

  private async execute(plan: BuildPlan, stage: PlannedStage): Promise<StageState> {
    const session = this.session;
    let state = await this.baseState(plan, stage);
    if (stage.overridden) return state; // a named context of its name is the whole stage
    const evaluator = new StageEvaluator(plan, stage, {
      env: state.config.config?.Env, workingDir: state.config.config?.WorkingDir, shell: state.config.config?.Shell, os: stage.platform.os,
    });
    // ONBUILD triggers of the base image run first, as BuildKit runs them, and are not inherited.
    const triggers = (state.config.config?.OnBuild ?? []).map((t) => parseOnbuildTrigger(t, plan.definition.file));
    const instructions = [...triggers, ...stage.instructions];
    if (state.config.config?.OnBuild) state = { ...state, config: { ...state.config, config: { ...state.config.config, OnBuild: undefined } } };
    // Numbered as BuildKit shows them: FROM and the instructions that touch the filesystem.
    const shown = (kind: string) => kind === 'RUN' || kind === 'COPY' || kind === 'ADD' || kind === 'WORKDIR';
    const total = 1 + instructions.filter((ins) => shown(ins.kind)).length;
    const label = stage.name ?? `stage-${stage.index}`;
    let number = 1;
    let cmdSet = false;
    try {
      for (const instruction of instructions) {
        const step = evaluator.step(instruction);
        if (shown(instruction.kind)) number++;
        const title = `[${session.multiPlatform ? formatPlatform(stage.platform) + ' ' : ''}${label} ${number}/${total}] ${oneLine(step.source.node.original)}`;
        // Only a RUN on the previous RUN's upper dir, or a config-only step, runs while layers are written.
        if (state.writing && !step.emptyLayer && !(step.expanded.kind === 'RUN' && state.writing.lowers)) state = await settled(state);
        state = await executeStep({ session, stages: this.stage, plan, stage, state, step, proxyEnv: evaluator.proxyEnv }, { title, cmdSet });
        if (step.expanded.kind === 'CMD') cmdSet = true;
      }
      return await settled(state);
    } catch (e) {
      // Layers still being written finish, and their mounts and dirs go, before the build's work dir does.
      await state.writing?.behind.settle().catch(() => undefined);
      throw e;
    }
  }

  private contextState(plan: BuildPlan, stage: PlannedStage, name: string): Promise<StageState> {
    const contexts = this.session.contexts;
    return locatedContext(() => contexts.state(contexts.named(name), stage.platform), `${plan.definition.file}:${stage.from.range.startLine}`);
  }

  private async baseState(plan: BuildPlan, stage: PlannedStage): Promise<StageState> {
    const base = stage.base;
    if (base.kind === 'scratch') return scratchState(stage.platform);
    if (base.kind === 'stage') return { ...(await this.stage(plan, plan.allStages[base.index])), platform: stage.platform };
    const image = base.kind === 'context' ? await this.contextState(plan, stage, base.name) : await this.session.imageState(base.ref, stage.platform);
    const config: ImageConfig = structuredClone(image.config);
    config.history ??= [];
    // BuildKit gives a base image without PATH the default one (not on Windows).
    const env = config.config?.Env ?? [];
    if (stage.platform.os !== 'windows' && !env.some((e) => e.startsWith('PATH='))) config.config = { ...config.config, Env: [`PATH=${defaultPath}`, ...env] };
    return { ...image, config };
  }
}

/** The state with its layers written: LayerInWriting entries replaced by what they became, its config's diffIDs complete. */
async function settled(state: StageState): Promise<StageState> {
  if (!state.writing) return state;
  await state.writing.behind.settle();
  const layers = await Promise.all(state.layers.map((l) => (l instanceof LayerInWriting ? l.done : l)));
  return { platform: state.platform, config: { ...state.config, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } }, layers, key: state.key };
}

/** A named context as a stage's base; a failure to load it says where the FROM is. */
async function locatedContext(load: () => Promise<StageState>, where: string): Promise<StageState> {
  try {
    return await load();
  } catch (e) {
    if (e instanceof UserError && !e.message.startsWith(where)) throw new UserError(`${where}: ${e.message}`, { hint: e.hint, cause: e });
    throw e;
  }
}

/** An instruction as buildx shows it in progress: its source text, continuations folded, shortened. */
function oneLine(text: string): string {
  const folded = text.replace(/\\?\r?\n\s*/g, ' ').replace(/\s+/g, ' ').trim();
  return folded.length > 120 ? folded.slice(0, 117) + '...' : folded;
}
