// The checks BuildKit runs while dispatching each stage's instructions (dockerfile2llb convert.go):
// the stage is walked with the frontend's own StageEvaluator over its base (an image's config, the
// parent stage's result, or scratch), so UndefinedVar sees exactly the variables the build sees.
// Also the base image's platform, WORKDIR, CMD/ENTRYPOINT form, ENV/LABEL form, secrets in ARG/ENV
// names, EXPOSE forms and COPY/ADD sources excluded by .dockerignore.
import { cleanPath, ShellLex, StageEvaluator, type BuildPlan, type Instruction, type PatternMatcher, type PlannedStage } from '../dockerfile/index.ts';
import { formatPlatform, normalizePlatform, type Platform } from '../oci/index.ts';
import { linesOf } from './definition.ts';
import type { Linter } from './linter.ts';
import { messages as m } from './rules.ts';
import { searchLikeBuildKit as search } from '../suggest.ts';

/** What a base image resolves to, for the checks: its config's environment and platform. */
export interface ResolvedBase {
  env?: string[];
  workingDir?: string;
  shell?: string[];
  platform?: Platform;
}

export type ResolveBase = (ref: string, platform: Platform) => Promise<ResolvedBase>;

export interface DispatchInput {
  plan: BuildPlan;
  /** The stages to walk (BuildKit: the target's, or every stage for a check without --target). */
  stages: PlannedStage[];
  /** Absent or failing: the stage's base environment is unknown and UndefinedVar is not checked there. */
  resolve?: ResolveBase;
  ignore?: PatternMatcher;
  /** PATH given to a base image without one (BuildKit's default). */
  defaultPath: string;
}

const SECRET = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const ALLOWED = /(?:_|^)(?:public|file|version)(?:_|$)/i;
const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

function secretKey(lint: Linter, instruction: string, key: string, ins: Instruction): void {
  if (SECRET.test(key) && !ALLOWED.test(key)) lint.run('SecretsUsedInArgOrEnv', linesOf(ins.range), m.SecretsUsedInArgOrEnv(instruction, key));
}

function exposeChecks(lint: Linter, ports: string[], ins: Instruction): void {
  for (const raw of ports) {
    const parts = raw.split(':');
    const container = parts[parts.length - 1];
    const hostPort = parts.length >= 2 ? parts[parts.length - 2] : '';
    const ip = parts.length >= 3 ? parts.slice(0, -2).join(':') : '';
    const slash = container.indexOf('/');
    const proto = slash < 0 ? '' : container.slice(slash + 1);
    if (proto !== proto.toLowerCase()) lint.run('ExposeProtoCasing', linesOf(ins.range), m.ExposeProtoCasing(raw));
    if (ip !== '' || hostPort !== '') lint.run('ExposeInvalidFormat', linesOf(ins.range), m.ExposeInvalidFormat(raw));
  }
}

const ROOT_PATTERNS = new Set(['*', '**', '**/*']);

function copyIgnored(lint: Linter, ignore: PatternMatcher | undefined, command: 'Copy' | 'Add', sources: string[], ins: Instruction): void {
  if (!ignore || ignore.hasExclusions) return;
  for (const raw of sources) {
    if (command === 'Add' && /^(https?:\/\/|git@)/.test(raw)) continue;
    const src = cleanPath(raw);
    if ((src === '.' || src === '/') && !ignore.patterns.some((p) => !p.exclusion && ROOT_PATTERNS.has(p.text))) continue;
    if (ignore.matches(src)) lint.run('CopyIgnoredFile', linesOf(ins.range), m.CopyIgnoredFile(command, src));
  }
}


interface StageResult { env: string[]; workingDir: string; shell?: string[]; known: boolean }

/** Walks the stages, dependencies first, reporting through `top` (merged with each step's comments). */
export async function dispatchChecks(input: DispatchInput, top: Linter): Promise<void> {
  const { plan } = input;
  const done = new Map<number, Promise<StageResult>>();
  const walk = (stage: PlannedStage): Promise<StageResult> => {
    let p = done.get(stage.index);
    if (!p) { p = walkStage(input, stage, top, walk); done.set(stage.index, p); }
    return p;
  };
  // One at a time, in order, so the warnings come out as BuildKit finds them.
  for (const s of input.stages) await walk(plan.allStages[s.index]);
}

async function baseOf(input: DispatchInput, stage: PlannedStage, top: Linter, walk: (s: PlannedStage) => Promise<StageResult>): Promise<StageResult> {
  const base = stage.base;
  if (base.kind === 'scratch') return { env: [], workingDir: '/', known: true };
  if (base.kind === 'stage') return walk(input.plan.allStages[base.index]);
  if (base.kind === 'context' || !input.resolve) return { env: [], workingDir: '/', known: false };
  let image: ResolvedBase;
  try { image = await input.resolve(base.ref, stage.platform); } catch { return { env: [], workingDir: '/', known: false }; }
  if (image.platform) {
    const want = normalizePlatform(stage.platform);
    const have = normalizePlatform(image.platform);
    if (want.os !== have.os || want.architecture !== have.architecture) {
      top.run('InvalidBaseImagePlatform', linesOf(stage.from.range), m.InvalidBaseImagePlatform(base.ref, formatPlatform(want), formatPlatform(have)));
    }
  }
  const env = image.env ?? [];
  const withPath = stage.platform.os !== 'windows' && !env.some((e) => e.startsWith('PATH=')) ? [`PATH=${input.defaultPath}`, ...env] : env;
  return { env: withPath, workingDir: image.workingDir ?? '/', shell: image.shell, known: true };
}

async function walkStage(input: DispatchInput, stage: PlannedStage, top: Linter, walk: (s: PlannedStage) => Promise<StageResult>): Promise<StageResult> {
  // A named context replaces the stage: none of its instructions is built, so none is checked.
  if (stage.overridden) return { env: [], workingDir: '/', known: false };
  const base = await baseOf(input, stage, top, walk);
  const ev = new StageEvaluator(input.plan, stage, { env: base.env, workingDir: base.workingDir, shell: base.shell, os: stage.platform.os });
  const lex = new ShellLex({ escapeToken: input.plan.definition.escapeToken });
  let workdirSet = false;
  const usedOnce = new Map<string, Instruction>();
  for (const ins of stage.instructions) {
    const lint = top.withComments(ins.node.comments);
    const at = linesOf(ins.range);
    const options = [...ev.env.keys()];
    const step = ev.step(ins);
    if (base.known) {
      const declared = new Set(ev.declaredArgs.map((a) => a.key));
      for (const v of step.unmatched) {
        if (declared.has(v) || NON_ENV_ARGS.has(v)) continue;
        lint.run('UndefinedVar', at, m.UndefinedVar(v, search(v, options, true)));
      }
    }
    const x = step.expanded;
    switch (x.kind) {
      case 'ENV':
        if (ins.kind === 'ENV' && ins.pairs.some((p) => p.noDelim)) lint.run('LegacyKeyValueFormat', at, m.LegacyKeyValueFormat(ins.node.rawKeyword));
        for (const p of x.pairs) secretKey(lint, 'ENV', p.key, ins);
        break;
      case 'LABEL':
        if (ins.kind === 'LABEL' && ins.pairs.some((p) => p.noDelim)) lint.run('LegacyKeyValueFormat', at, m.LegacyKeyValueFormat(ins.node.rawKeyword));
        break;
      case 'ARG': for (const a of x.args) secretKey(lint, 'ARG', a.key, ins); break;
      case 'CMD': case 'ENTRYPOINT': case 'HEALTHCHECK': {
        const prev = usedOnce.get(x.kind);
        if (prev) lint.run('MultipleInstructionsDisallowed', linesOf(prev.range), m.MultipleInstructionsDisallowed(ins.node.rawKeyword));
        usedOnce.set(x.kind, ins);
        if ((ins.kind === 'CMD' || ins.kind === 'ENTRYPOINT') && ins.prependShell && !ev.shell?.length) lint.run('JSONArgsRecommended', at, m.JSONArgsRecommended(ins.node.rawKeyword));
        break;
      }
      case 'WORKDIR':
        if (!workdirSet && ins.kind === 'WORKDIR') {
          const path = ev.expandWord(ins.path);
          if (!path.startsWith('/')) lint.run('WorkdirRelativePath', at, m.WorkdirRelativePath(path));
        }
        workdirSet = true;
        break;
      case 'EXPOSE': if (ins.kind === 'EXPOSE') exposeChecks(lint, ins.ports.flatMap((p) => lex.processWords(p, ev.env)), ins); break;
      case 'COPY': case 'ADD':
        if (x.kind === 'ADD' || x.from === undefined) copyIgnored(lint, input.ignore, x.kind === 'ADD' ? 'Add' : 'Copy', x.sources, ins);
        break;
      default: break;
    }
  }
  return { env: [...ev.imageEnv].map(([k, v]) => `${k}=${v}`), workingDir: ev.workingDir, shell: ev.shell, known: base.known };
}
