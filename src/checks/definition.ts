// The checks BuildKit runs while parsing and planning (instructions/parse.go and the validations of
// dockerfile2llb before any stage is dispatched): empty continuations, stage name casing and
// reserved or duplicate names, instruction casing, definition comments, and the FROM lines (ARGs,
// --platform, default base names). They see every stage, reachable or not.
import { evaluateGlobalArgs, ShellLex, type DockerfileDefinition, type SourceRange } from '../dockerfile/index.ts';
import { parsePlatform, type Platform } from '../oci/index.ts';
import type { Linter } from './linter.ts';
import { messages as m } from './rules.ts';
import { searchLikeBuildKit as search } from '../suggest.ts';

export const linesOf = (r: SourceRange): { start: number; end: number } => ({ start: r.startLine, end: r.endLine });

const lower = (s: string): boolean => s === s.toLowerCase();
const selfConsistent = (s: string): boolean => s === s.toLowerCase() || s === s.toUpperCase();

function definitionDescription(lint: Linter, instruction: string, keys: string[], comments: readonly string[], at: SourceRange): void {
  if (comments.length === 0 || keys.length === 0) return;
  const first = comments[comments.length - 1].split(' ')[0];
  if (keys.includes(first)) return;
  lint.run('InvalidDefinitionDescription', linesOf(at), m.InvalidDefinitionDescription(instruction, keys.length > 1 ? '<arg_key>' : keys[0]));
}

/** instructions.Parse's checks, node by node in file order. */
function parseChecks(def: DockerfileDefinition, top: Linter): void {
  for (const line of def.emptyContinuationLines) top.run('NoEmptyContinuation', { start: line, end: line }, m.NoEmptyContinuation());
  const all = [...def.metaArgs, ...def.stages.flatMap((s) => [s.from, ...s.instructions])].sort((a, b) => a.range.startLine - b.range.startLine);
  for (const ins of all) {
    const lint = top.withComments(ins.node.comments);
    const at = linesOf(ins.range);
    if (ins.kind === 'MAINTAINER') lint.run('MaintainerDeprecated', at, m.MaintainerDeprecated());
    if (ins.kind === 'FROM') {
      const args = ins.node.args;
      if (args.length === 3 && !lower(args[2])) lint.run('StageNameCasing', at, m.StageNameCasing(args[2]));
      const kw = ins.node.rawKeyword;
      if (args.length >= 3 && selfConsistent(kw) && (lower(kw) ? !lower(args[1]) : args[1] !== args[1].toUpperCase())) {
        lint.run('FromAsCasing', at, m.FromAsCasing(kw, args[1]));
      }
      if (ins.stageName) definitionDescription(lint, 'FROM', [ins.stageName], ins.node.comments, ins.range);
    }
    if (ins.kind === 'ARG') definitionDescription(lint, 'ARG', ins.args.map((a) => a.key), ins.node.comments, ins.range);
  }
}

function stageNames(def: DockerfileDefinition, lint: Linter): void {
  const seen = new Set<string>();
  for (const s of def.stages) {
    if (!s.name) continue;
    if (s.name === 'context' || s.name === 'scratch') lint.run('ReservedStageName', linesOf(s.from.range), m.ReservedStageName(s.name));
    if (seen.has(s.name)) lint.run('DuplicateStageName', linesOf(s.from.range), m.DuplicateStageName(s.name));
    seen.add(s.name);
  }
}

function commandCasing(def: DockerfileDefinition, lint: Linter): void {
  const words = def.stages.flatMap((s) => [s.from, ...s.instructions]).map((ins) => ({ word: ins.node.rawKeyword, range: ins.range }));
  let lowerCount = 0;
  let upperCount = 0;
  for (const { word } of words) if (selfConsistent(word)) { if (lower(word)) lowerCount++; else upperCount++; }
  const majorityLower = lowerCount > upperCount;
  for (const { word, range } of words) {
    const casing = majorityLower && !lower(word) ? 'lowercase' : !majorityLower && word !== word.toUpperCase() ? 'uppercase' : '';
    if (casing) lint.run('ConsistentInstructionCasing', linesOf(range), m.ConsistentInstructionCasing(word, casing));
  }
}

// distribution/reference's grammar, enough to tell ParseNormalizedNamed's successes from its failures.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = '(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?';
const REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${COMPONENT}(?:/${COMPONENT})*(?::[\\w][\\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`);

/** Would reference.ParseNormalizedNamed accept this base name? */
export function validBaseName(name: string): boolean {
  if (/^[a-f0-9]{64}$/.test(name)) return false;
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  // A first component with uppercase letters that is not a domain is an invalid repository name.
  if (first && !/[.:]/.test(first) && first !== 'localhost' && first !== first.toLowerCase()) return false;
  return REFERENCE.test(name);
}

export interface DefinitionInput {
  def: DockerfileDefinition;
  buildArgs: ReadonlyMap<string, string>;
  targetPlatform: Platform;
  buildPlatform: Platform;
}

/** FROM lines: the base with only default ARG values, undeclared ARGs, and --platform. */
function fromChecks(input: DefinitionInput, top: Linter): void {
  const { def } = input;
  const lex = new ShellLex({ escapeToken: def.escapeToken });
  try {
    const defaults = evaluateGlobalArgs(def, new Map(), input.targetPlatform, input.buildPlatform).args;
    for (const s of def.stages) {
      const r = lex.process(s.from.image, defaults);
      if (!validBaseName(r.result)) top.run('InvalidDefaultArgInFrom', linesOf(s.from.range), m.InvalidDefaultArgInFrom(s.from.image));
    }
  } catch { /* the build reports the error itself */ }
  let globals: Map<string, string>;
  let declared: Set<string>;
  try { ({ args: globals, declared } = evaluateGlobalArgs(def, input.buildArgs, input.targetPlatform, input.buildPlatform)); } catch { return; }
  const keys = [...new Set([...declared, ...globals.keys()])];
  for (const s of def.stages) {
    const lint = top.withComments(s.from.node.comments);
    const at = linesOf(s.from.range);
    const undeclared = (unmatched: Set<string>): void => {
      for (const a of unmatched) if (!keys.includes(a)) lint.run('UndefinedArgInFrom', at, m.UndefinedArgInFrom(a, search(a, keys, true)));
    };
    try { undeclared(lex.process(s.from.image, globals).unmatched); } catch { /* reported by the build */ }
    if (s.from.platform === undefined) continue;
    let p;
    try { p = lex.process(s.from.platform, globals); } catch { continue; }
    undeclared(p.unmatched);
    if (p.matched.size === 1 && p.unmatched.size === 0 && p.matched.has('TARGETPLATFORM') && p.result === globals.get('TARGETPLATFORM')) {
      lint.run('RedundantTargetPlatform', at, m.RedundantTargetPlatform(s.from.platform));
    }
    if (p.matched.size === 0 && p.unmatched.size === 0) {
      let plat: Platform | undefined;
      try { plat = parsePlatform(p.result); } catch { plat = undefined; }
      const name = s.name ?? '';
      if (plat && !name.includes(plat.os) && !name.includes(plat.architecture)) lint.run('FromPlatformFlagConstDisallowed', at, m.FromPlatformFlagConstDisallowed(p.result));
    }
  }
}

/** Every check that needs no stage to be dispatched, in BuildKit's order. */
export function definitionChecks(input: DefinitionInput, top: Linter): void {
  parseChecks(input.def, top);
  stageNames(input.def, top);
  commandCasing(input.def, top);
  fromChecks(input, top);
}
