/**
 * checks: BuildKit's build checks (the Dockerfile linter) — the rule table (rules.ts: names,
 * descriptions, documentation URLs, messages), the `# check=skip=…;error=…;experimental=…`
 * configuration and the collector (linter.ts), the checks made before any stage runs
 * (definition.ts) and those made while walking each stage's instructions (dispatch.ts), one run
 * and its printed forms (run.ts). Pure code: base images come in through a resolver function.
 *
 * This file is the folder's only public door. The folder imports only ../dockerfile/index.ts,
 * ../oci/index.ts and ../errors.ts; the engine, cli/ and action/ import it, never the other way.
 */
export { runChecks, formatBuildWarnings, formatCheckReport, formatShort, mergeWarnings, type CheckInput, type CheckReport } from './run.ts';
export type { CheckWarning } from './linter.ts';
export type { ResolvedBase, ResolveBase } from './dispatch.ts';
export { RULES, type RuleName } from './rules.ts';
