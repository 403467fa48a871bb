/**
 * dockerfile: the Dockerfile frontend, as BuildKit's — parse (parser.ts) → typed instructions
 * (instructions.ts) → stage graph + ARG scoping (stages.ts) → per-instruction expansion, env and
 * history strings (evaluate.ts); word expansion (shell-lex.ts); .dockerignore + context walk
 * (dockerignore.ts); `--call targets|outline` text (calls.ts). Pure code except the context walker.
 */
export { parseDockerfile } from './parser.ts';
export { chompHeredoc, parseHeredocMarker } from './heredoc.ts';
export type { Node, KeyValue, ParseResult, Directives } from './parser.ts';
export type { Heredoc } from './heredoc.ts';
export { DockerfileError } from './errors.ts';
export type { SourceRange } from './errors.ts';
export { ShellLex, goQuote } from './shell-lex.ts';
export type { LexOptions, ExpandResult, EnvLookup } from './shell-lex.ts';
export { parseDefinition, parseInstruction, parseOnbuildTrigger, INSTRUCTION_NAMES } from './instructions.ts';
export type {
  Instruction, FromInstruction, RunInstruction, CmdInstruction, EntrypointInstruction, EnvInstruction,
  LabelInstruction, MaintainerInstruction, ExposeInstruction, CopyInstruction, VolumeInstruction,
  UserInstruction, WorkdirInstruction, ArgInstruction, OnbuildInstruction, StopsignalInstruction,
  HealthcheckInstruction, ShellInstruction, HealthConfig, InlineFile, SourceContent, ArgDecl, StageDef,
  DockerfileDefinition,
} from './instructions.ts';
export { parseMount, mountWithDefaults, parseGoDuration, formatGoDuration } from './flags.ts';
export type { Mount, MountSpec, MountType, CacheSharing } from './flags.ts';
export { planBuild, resolveStageRef, platformArgs, PROXY_ARGS } from './stages.ts';
export type { BuildPlan, PlannedStage, PlanOptions, StageRef } from './stages.ts';
export { StageEvaluator, normalizeWorkdir, parseExposedPorts, healthcheckCreatedBy, cleanPath } from './evaluate.ts';
export type { BaseState, EvaluatedStep, ExpandedInstruction } from './evaluate.ts';
export { parseDockerignore, PatternMatcher, readIgnorePatterns, loadMatcher, walkContext } from './dockerignore.ts';
export type { ContextEntry } from './dockerignore.ts';
export { formatTargets, formatOutline, listTargets, outlineTarget } from './calls.ts';
export type { TargetInfo, Outline, OutlineArg, OutlineSecret } from './calls.ts';
