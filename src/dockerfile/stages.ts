// The stage graph and ARG scoping of a build: global ARGs (+ automatic platform ARGs) expanded into
// each FROM, `--build-arg` overrides, stage references (`FROM <stage>`, `COPY --from`, `RUN
// --mount=from=`), the stages a target needs in dependency order, and clear errors for a missing
// target, a cycle, a duplicate stage name or a bad stage index.
import { formatPlatform, normalizePlatform, parsePlatform, type Platform } from '../oci/index.ts';
import { UserError } from '../errors.ts';
import { DockerfileError } from './errors.ts';
import { isDockerfileFrontend, parseDefinition, type ArgInstruction, type DockerfileDefinition, type Instruction, type StageDef } from './instructions.ts';
import { ShellLex } from './shell-lex.ts';

/** Where a stage, `COPY --from` or `--mount from=` takes its files from. */
export type StageRef =
  | { kind: 'scratch' }
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string }
  /** A named context (`--build-context NAME=…`), which wins over an image of that name. */
  | { kind: 'context'; name: string };

/** Whether a build context of this name was given (the engine matches names as BuildKit does). */
export type NamedContextLookup = (name: string) => boolean;

export interface PlannedStage extends StageDef {
  /** The FROM image word after expanding global ARGs (e.g. `alpine:3.20`, a stage name, `scratch`). */
  baseName: string;
  base: StageRef;
  /** The platform this stage builds for: FROM --platform (expanded) or the target platform. */
  platform: Platform;
  /** True when FROM had --platform. */
  platformExplicit: boolean;
  /** Other stages this one needs (base, COPY --from, RUN --mount from=), by index, sorted. */
  dependencies: number[];
  /** Images (not stages) named by COPY --from / RUN --mount from=. */
  imageDependencies: string[];
  /** A named context of the stage's name replaces the whole stage (base: that context; no steps run). */
  overridden?: boolean;
}

export interface PlanOptions {
  dockerfile: string;
  /** Path of the Dockerfile, used in error messages. */
  path?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  targetPlatform: Platform;
  buildPlatform: Platform;
  /** Named contexts given (`--build-context`): they override stages and images of their name. */
  namedContext?: NamedContextLookup;
}

export interface BuildPlan {
  definition: DockerfileDefinition;
  /** Every stage of the Dockerfile, by index (planned or not). */
  allStages: PlannedStage[];
  /** The stages the target needs, dependencies first, the target last. */
  stages: PlannedStage[];
  target: PlannedStage;
  /** The global scope after the ARGs before the first FROM (and the automatic platform ARGs). */
  globalArgs: ReadonlyMap<string, string>;
  /** The --build-arg values given. */
  buildArgs: ReadonlyMap<string, string>;
  targetPlatform: Platform;
  buildPlatform: Platform;
  namedContext?: NamedContextLookup;
  /** Unused build-arg warnings (never printed here; the build checks come from src/checks). */
  warnings: string[];
}

export const PROXY_ARGS = ['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy'];

/**
 * The automatic ARGs for a target and build platform (BuildKit's dockerfile2llb defaultArgs), and
 * TARGETSTAGE: the stage being built (--target, else the last stage's name, else "default").
 */
export function platformArgs(target: Platform, build: Platform, targetStage = 'default'): Map<string, string> {
  const t = normalizePlatform(target);
  const b = normalizePlatform(build);
  return new Map([
    ['BUILDPLATFORM', formatPlatform(b)], ['BUILDOS', b.os], ['BUILDOSVERSION', b['os.version'] ?? ''], ['BUILDARCH', b.architecture], ['BUILDVARIANT', b.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(t)], ['TARGETOS', t.os], ['TARGETOSVERSION', t['os.version'] ?? ''], ['TARGETARCH', t.architecture], ['TARGETVARIANT', t.variant ?? ''],
    ['TARGETSTAGE', targetStage],
  ]);
}

const BUILTIN_ARGS = [...platformArgs({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' }).keys()];
const isBuiltinArg = (k: string): boolean => PROXY_ARGS.includes(k) || k.startsWith('BUILDKIT_') || k === 'SOURCE_DATE_EPOCH' || BUILTIN_ARGS.includes(k);

function loc(def: DockerfileDefinition, ins: Instruction, err: unknown): never {
  if (err instanceof DockerfileError) throw err;
  if (err instanceof UserError) throw new DockerfileError(def.file, ins.range, err.message, ins.node.original, err.hint);
  throw err;
}

/** Evaluates the global ARG section: platform ARGs, then each meta ARG (build-arg wins over default). */
export function evaluateGlobalArgs(def: DockerfileDefinition, buildArgs: ReadonlyMap<string, string>, target: Platform, build: Platform, targetStage?: string): { args: Map<string, string>; declared: Set<string> } {
  const lex = new ShellLex({ escapeToken: def.escapeToken });
  const args = platformArgs(target, build, targetStage);
  const declared = new Set<string>();
  const scope: MetaArgScope = { def, lex, args, buildArgs, declared };
  for (const ins of def.metaArgs) evalMetaArg(scope, ins);
  return { args, declared };
}

/** What evaluating one global ARG reads (def, lex, buildArgs) and updates (args, declared). */
interface MetaArgScope {
  def: DockerfileDefinition;
  lex: ShellLex;
  args: Map<string, string>;
  buildArgs: ReadonlyMap<string, string>;
  declared: Set<string>;
}

function evalMetaArg(scope: MetaArgScope, ins: ArgInstruction): void {
  const { def, lex, args, buildArgs, declared } = scope;
  for (const a of ins.args) {
    declared.add(a.key);
    let value: string | undefined;
    if (a.value !== undefined) {
      try { value = lex.processWord(a.value, args); } catch (e) { loc(def, ins, e); }
    }
    const override = buildArgs.get(a.key);
    if (override !== undefined) value = override;
    if (value !== undefined) args.set(a.key, value);
  }
}

/**
 * Resolves a `--from` / `from=` value as BuildKit does: a stage index, a stage name (any case),
 * scratch, a named context, or an image reference.
 */
export function resolveStageRef(def: DockerfileDefinition, text: string, named?: NamedContextLookup): StageRef {
  if (/^-?\d+$/.test(text)) {
    const i = Number(text);
    if (i < 0 || i >= def.stages.length) throw new UserError(`invalid stage index ${text}`, { hint: `stage indexes run from 0 to ${def.stages.length - 1}` });
    return { kind: 'stage', index: i };
  }
  const lower = text.toLowerCase();
  const s = def.stages.find((st) => st.name === lower);
  if (s) return { kind: 'stage', index: s.index };
  if (lower === 'scratch') return { kind: 'scratch' };
  if (named?.(text)) return { kind: 'context', name: text };
  return { kind: 'image', ref: text };
}

function planStage(def: DockerfileDefinition, s: StageDef, globalArgs: Map<string, string>, usedGlobals: Set<string>, opts: PlanOptions): PlannedStage {
  const { targetPlatform, namedContext } = opts;
  const lex = new ShellLex({ escapeToken: def.escapeToken });
  let baseName: string;
  let platform = targetPlatform;
  let platformExplicit = false;
  try {
    const r = lex.process(s.from.image, globalArgs);
    for (const m of r.matched) usedGlobals.add(m);
    baseName = r.result;
    if (baseName === '') throw new UserError(`base name (${s.from.image}) should not be blank`, { hint: 'give FROM an image, a stage name, or scratch (check the ARG it uses)' });
    if (s.from.platform !== undefined) {
      const p = lex.process(s.from.platform, globalArgs);
      for (const m of p.matched) usedGlobals.add(m);
      try { platform = parsePlatform(p.result); } catch (e) {
        throw new UserError(`failed to parse platform ${p.result}: ${(e as Error).message}`, { hint: 'use os/arch[/variant], e.g. linux/amd64 or $BUILDPLATFORM' });
      }
      platformExplicit = true;
    }
  } catch (e) { loc(def, s.from, e); }
  // A named context of the stage's own name replaces it: nothing of the stage runs (BuildKit).
  if (s.name !== undefined && namedContext?.(s.name)) {
    return { ...s, baseName, base: { kind: 'context', name: s.name }, platform, platformExplicit, dependencies: [], imageDependencies: [], overridden: true };
  }
  let base: StageRef;
  const lower = baseName.toLowerCase();
  const named = def.stages.find((st) => st.name !== undefined && st.name === lower);
  if (named) base = { kind: 'stage', index: named.index };
  else if (lower === 'scratch') base = { kind: 'scratch' };
  else if (namedContext?.(baseName)) base = { kind: 'context', name: baseName };
  else base = { kind: 'image', ref: baseName };
  const deps = new Set<number>();
  const images = new Set<string>();
  if (base.kind === 'stage') deps.add(base.index);
  const addRef = (ins: Instruction, text: string): void => {
    let r: StageRef;
    try { r = resolveStageRef(def, text, namedContext); } catch (e) { loc(def, ins, e); }
    if (r.kind === 'stage') deps.add(r.index);
    else if (r.kind === 'image') images.add(r.ref);
  };
  for (const ins of s.instructions) {
    if (ins.kind === 'COPY' && ins.from !== undefined) addRef(ins, ins.from);
    if (ins.kind === 'RUN') for (const m of ins.mountSpecs) if (m.from !== undefined && m.from !== '') addRef(ins, m.from);
  }
  return { ...s, baseName, base, platform, platformExplicit, dependencies: [...deps].sort((a, b) => a - b), imageDependencies: [...images] };
}

/**
 * Plans a build: parses the Dockerfile, evaluates global ARGs, resolves every stage's base and
 * references, and returns the stages `target` (default: the last stage) needs, dependencies first.
 * Words inside stages are expanded later, per instruction, by StageEvaluator (evaluate.ts), because
 * they depend on the base image's environment.
 */
export function planBuild(opts: PlanOptions): BuildPlan {
  const file = opts.path ?? 'Dockerfile';
  const def = parseDefinition(opts.dockerfile, file);
  const buildArgs = new Map(Object.entries(opts.buildArgs ?? {}));
  const seen = new Map<string, StageDef>();
  for (const s of def.stages) {
    if (!s.name) continue;
    const prev = seen.get(s.name);
    if (prev) throw new DockerfileError(file, s.from.range, `duplicate stage name "${s.name}"`, s.from.node.original, `stage "${s.name}" is already defined at line ${prev.from.range.startLine}; rename one of them`);
    seen.set(s.name, s);
  }
  const targetStage = opts.target || def.stages[def.stages.length - 1]?.name || 'default';
  const { args: globalArgs, declared } = evaluateGlobalArgs(def, buildArgs, opts.targetPlatform, opts.buildPlatform, targetStage);
  const usedGlobals = new Set<string>();
  const allStages = def.stages.map((s) => planStage(def, s, globalArgs, usedGlobals, opts));

  let target: PlannedStage;
  if (opts.target !== undefined && opts.target !== '') {
    const t = allStages.find((s) => s.name === opts.target!.toLowerCase());
    if (!t) {
      const names = allStages.flatMap((s) => (s.name ? [s.name] : []));
      throw new UserError(`target stage "${opts.target}" could not be found`, { hint: names.length ? `stages in ${file}: ${names.join(', ')}` : `${file} has no named stages (name one with FROM image AS name)` });
    }
    target = t;
  } else target = allStages[allStages.length - 1];

  // Depth-first from the target: dependencies first; a back edge is a cycle.
  const order: PlannedStage[] = [];
  const state = new Map<number, 'visiting' | 'done'>();
  const visit = (s: PlannedStage, path: PlannedStage[]): void => {
    const st = state.get(s.index);
    if (st === 'done') return;
    if (st === 'visiting') {
      const cyc = [...path.slice(path.indexOf(s)), s].map((x) => x.name ?? `stage ${x.index}`).join(' -> ');
      throw new DockerfileError(file, s.from.range, `circular dependency detected on stage: ${s.name ?? s.index}`, s.from.node.original, `break the cycle ${cyc}`);
    }
    state.set(s.index, 'visiting');
    for (const d of s.dependencies) visit(allStages[d], [...path, s]);
    state.set(s.index, 'done');
    order.push(s);
  };
  visit(target, []);

  // The parser's empty-continuation notes are the NoEmptyContinuation build check now (src/checks).
  // --build-arg BUILDKIT_SYNTAX=<image> [args] picks the frontend instead of `# syntax=` (BuildKit's builder/build.go); dockerfile.v0 is the built-in one.
  const syntaxArg = buildArgs.get('BUILDKIT_SYNTAX')?.trim().split(' ')[0];
  const warnings: string[] = syntaxArg === undefined ? [...def.notices] : def.notices.filter((n) => !n.startsWith(`${file}: # syntax=`));
  if (syntaxArg && syntaxArg !== 'dockerfile.v0' && !isDockerfileFrontend(syntaxArg)) warnings.unshift(`--build-arg BUILDKIT_SYNTAX=${syntaxArg} names a frontend image that slipway cannot run; the Dockerfile is read as docker/dockerfile:1`);
  const consumed = new Set<string>([...declared]);
  for (const s of order) for (const ins of s.instructions) if (ins.kind === 'ARG') for (const a of ins.args) consumed.add(a.key);
  const unused = [...buildArgs.keys()].filter((k) => !consumed.has(k) && !isBuiltinArg(k)).sort();
  if (unused.length) warnings.push(`One or more build-args [${unused.join(' ')}] were not consumed`);
  return { definition: def, allStages, stages: order, target, globalArgs, buildArgs, targetPlatform: opts.targetPlatform, buildPlatform: opts.buildPlatform, namedContext: opts.namedContext, warnings };
}
