// One check run over a Dockerfile for one target platform, and the two ways BuildKit's results are
// printed: the short list `docker build` shows after a build, and the `--check` report.
import { parseDefinition, planBuild, type BuildPlan, type PatternMatcher, type PlanOptions } from '../dockerfile/index.ts';
import { UserError } from '../errors.ts';
import { definitionChecks } from './definition.ts';
import { dispatchChecks, type ResolveBase } from './dispatch.ts';
import { Linter, parseCheckOptions, type CheckWarning } from './linter.ts';

export interface CheckInput extends PlanOptions {
  /** `--check` without --target walks every stage; a build walks the ones it needs. */
  allStages: boolean;
  resolve?: ResolveBase;
  ignore?: PatternMatcher;
  defaultPath: string;
  /** The plan of these same options, when the caller has made it already (a build has). */
  plan?: BuildPlan;
}

export interface CheckReport {
  /** The Dockerfile's name in messages, and its lines (for the source excerpts). */
  file: string;
  source: string;
  warnings: CheckWarning[];
  /** `error=true` in the check directive and a warning found: the build must fail with this. */
  violation?: UserError;
  /** The Dockerfile could not be planned (checks before that point ran). */
  error?: unknown;
  /** The check options (directive or build arg) are malformed: a build fails with this, as BuildKit's does. */
  configError?: UserError;
  plan?: BuildPlan;
}

/** Runs every check (skips and `error=` from the `# check=` directive or the BUILDKIT_DOCKERFILE_CHECK build arg); never throws for a bad Dockerfile. */
export async function runChecks(input: CheckInput): Promise<CheckReport> {
  const file = input.path ?? 'Dockerfile';
  const report: CheckReport = { file, source: input.dockerfile, warnings: [] };
  let plan = input.plan;
  let lint: Linter | undefined;
  if (!plan) {
    try {
      plan = planBuild({ ...input });
    } catch (e) { report.error = e; }
  }
  const def = plan?.definition ?? tryDefinition(input);
  if (!def) return report;
  // --build-arg BUILDKIT_DOCKERFILE_CHECK=… replaces the `# check=` directive (BuildKit's dockerui config).
  const fromArg = input.buildArgs?.BUILDKIT_DOCKERFILE_CHECK;
  try {
    lint = new Linter(fromArg === undefined ? parseCheckOptions(def.directives.check ?? '') : checkOptionsArg(fromArg));
  } catch (e) { report.error = e; report.configError = e as UserError; return report; }
  definitionChecks({ def, buildArgs: new Map(Object.entries(input.buildArgs ?? {})), targetPlatform: input.targetPlatform, buildPlatform: input.buildPlatform }, lint);
  if (plan) {
    report.plan = plan;
    try {
      await dispatchChecks({ plan, stages: input.allStages && !input.target ? plan.allStages : plan.stages, resolve: input.resolve, ignore: input.ignore, defaultPath: input.defaultPath }, lint);
    } catch (e) { report.error = e; }
  }
  report.warnings = sortWarnings(lint.warnings);
  report.violation = lint.error();
  return report;
}

function checkOptionsArg(value: string): ReturnType<typeof parseCheckOptions> {
  try {
    return parseCheckOptions(value);
  } catch (e) {
    const why = (e as Error).message.replace(/^failed to parse check options: /, '');
    throw new UserError(`failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: ${why}`, { hint: 'write --build-arg BUILDKIT_DOCKERFILE_CHECK=skip=Rule1,Rule2;error=true (or skip=all)' });
  }
}

function tryDefinition(input: CheckInput): ReturnType<typeof parseDefinition> | undefined {
  // planBuild failed after parsing (a duplicate stage name, a missing target…): the checks that
  // need no plan still run, as BuildKit's lint reports them beside the error.
  try {
    return parseDefinition(input.dockerfile, input.path);
  } catch {
    return undefined;
  }
}

/** Stable, by line (warnings without a line first), as BuildKit sorts them for printing. */
export function sortWarnings(ws: readonly CheckWarning[]): CheckWarning[] {
  return ws.map((w, i) => ({ w, i })).sort((a, b) => ((a.w.lines?.start ?? 0) - (b.w.lines?.start ?? 0)) || a.i - b.i).map((x) => x.w);
}

/** Warnings found for several platforms, each once. */
export function mergeWarnings(lists: CheckWarning[][]): CheckWarning[] {
  const seen = new Set<string>();
  const out: CheckWarning[] = [];
  for (const w of lists.flat()) {
    const k = `${w.rule}|${w.message}|${w.lines?.start ?? ''}`;
    if (!seen.has(k)) { seen.add(k); out.push(w); }
  }
  return sortWarnings(out);
}

/** BuildKit's LintFormatShort: `Rule: message (line N)`. */
export function formatShort(w: CheckWarning): string {
  return `${w.rule}: ${w.message}${w.lines && w.lines.start > 0 ? ` (line ${w.lines.start})` : ''}`;
}

/** What buildx prints after a build: the count, then ` - Rule: message (line N)` and the rule's page. */
export function formatBuildWarnings(ws: readonly CheckWarning[]): string {
  if (ws.length === 0) return '';
  let out = `\n ${ws.length === 1 ? '1 warning found' : `${ws.length} warnings found`}:\n`;
  for (const w of ws) out += ` - ${formatShort(w)}\n${w.url ? `More info: ${w.url}\n` : ''}`;
  return out;
}

/** BuildKit's source excerpt: `file:line`, the lines around, `>>>` on the instruction's lines. */
export function formatSource(file: string, source: string, range: { start: number; end: number }): string {
  const lines = source.split('\n');
  let start = range.start;
  let end = Math.min(Math.max(range.end, range.start), lines.length);
  if (start > lines.length || start < 1) return '';
  const pad = end === start ? 4 : 2;
  const first = start;
  for (let p = 0; p < pad;) {
    if (start > 1) { start--; p++; }
    if (end !== lines.length) { end++; p++; }
    p++;
  }
  let out = `${file}:${first}\n--------------------\n`;
  for (let i = start; i <= end; i++) {
    const mark = i >= range.start && i <= Math.max(range.end, range.start) ? '>>>' : '   ';
    out += ` ${String(i).padStart(3)} | ${mark} ${lines[i - 1]}\n`;
  }
  return out + '--------------------\n';
}

/** The `--check` report as buildx prints it; `status` is its exit status (1 when anything was found). */
export function formatCheckReport(r: CheckReport): { text: string; status: number } {
  const n = r.warnings.length;
  let text = n === 0 ? '' : `Check complete, ${n === 1 ? '1 warning has been found!' : `${n} warnings have been found!`}\n`;
  for (const w of r.warnings) {
    text += `\nWARNING: ${w.rule}${w.url ? ` - ${w.url}` : ''}\n${w.message}\n`;
    if (w.lines) text += formatSource(r.file, r.source, w.lines);
  }
  if (r.error !== undefined) text += (n ? '\n' : '') + `ERROR: ${r.error instanceof Error ? r.error.message : String(r.error)}\n`;
  else if (n === 0) text += 'Check complete, no warnings found.\n';
  return { text, status: n > 0 || r.error !== undefined ? 1 : 0 };
}
