/**
 * dockerfile: the Dockerfile frontend, as BuildKit's — parse (parser.ts, with words.ts and
 * heredoc.ts) → typed instructions (instructions.ts) → stage graph + ARG scoping (stages.ts) →
 * per-instruction expansion, env and history strings (evaluate.ts); word expansion (shell-lex.ts,
 * shell-pattern.ts); builder flags and --mount (flags.ts); .dockerignore + context walk
 * (dockerignore.ts); `--call targets|outline` text (calls.ts). Pure code except the context walker.
 *
 * This file is the folder's only public door: code outside src/dockerfile imports from here, and
 * only the names below (what src/ and bench/ use today). Tests may import the module files.
 * The folder must not import other src folders except ../oci/index.ts (platforms, in stages.ts)
 * and ../errors.ts (UserError); besides those it uses only node: built-ins (the context walker).
 */
export { planBuild, resolveStageRef } from './stages.ts';
export type { BuildPlan, NamedContextLookup, PlannedStage, PlanOptions, StageRef } from './stages.ts';
export { StageEvaluator, cleanPath } from './evaluate.ts';
export type { EvaluatedStep, ExpandedInstruction } from './evaluate.ts';
export { parseOnbuildTrigger } from './instructions.ts';
export type { DeviceSpec, Mount } from './flags.ts';
export { DockerfileError } from './errors.ts';
export { parseDockerignore, PatternMatcher, loadMatcher, walkContext } from './dockerignore.ts';
export { formatTargets, formatOutline } from './calls.ts';
// For the build checks (src/checks): the definition, global ARG evaluation and the lexer.
export { parseDefinition } from './instructions.ts';
export type { DockerfileDefinition, Instruction, StageDef } from './instructions.ts';
export { evaluateGlobalArgs, platformArgs } from './stages.ts';
export { ShellLex, goQuote } from './shell-lex.ts';
export type { SourceRange } from './errors.ts';
