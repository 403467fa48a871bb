// Dockerfile text → AST, as BuildKit's frontend/dockerfile/parser does it: parser directives at
// the top, escape-token line continuations (comments and blank lines inside them skipped), per-
// instruction argument splitting (JSON or shell form, with BuildKit's fallback to shell form on
// invalid JSON), builder flags (`--name=value`) and heredocs. No instruction semantics here.
// Word splitting lives in words.ts, heredoc markers and bodies in heredoc.ts.
import { DockerfileError, type SourceRange } from './errors.ts';
import { heredocsFromLine, readHeredocBodies, type Heredoc, type HeredocMarker } from './heredoc.ts';
import {
  extractFlags, isSpace, NotStringArray, parseJSONArray, parseWords, splitWhitespace, trimLeftSpace, trimNewline, trimSpace,
} from './words.ts';

export type { SourceRange } from './errors.ts';
export type { Heredoc } from './heredoc.ts';

export interface KeyValue { key: string; value: string; /** legacy `ENV key value` form */ noDelim: boolean }

export interface Node {
  /** The instruction word lowercased (`run`, `copy`, …, or whatever unknown word was written). */
  keyword: string;
  /** The instruction word as written. */
  rawKeyword: string;
  /** The logical line: continuation lines joined, comments removed, escape+newline dropped. */
  original: string;
  /** Builder flags as written after the keyword, e.g. `--mount=type=cache,target=/x`. */
  flags: string[];
  /** Arguments, split per BuildKit's rules for this instruction (quotes kept in shell form). */
  args: string[];
  /** True when the arguments were a JSON array (exec form). */
  json: boolean;
  /** ENV and LABEL: the key/value pairs (raw, quotes kept). */
  pairs?: KeyValue[];
  heredocs: Heredoc[];
  /** ONBUILD: the trigger instruction. */
  sub?: Node;
  /** Comment lines (without `#`) since the previous instruction. */
  comments: string[];
  range: SourceRange;
}

export interface Directives { syntax?: string; escape?: string; check?: string }

export interface ParseResult {
  nodes: Node[];
  escapeToken: string;
  directives: Directives;
  warnings: string[];
  /** The last line of each instruction that had an empty continuation line (BuildKit's warning location). */
  emptyContinuationLines: number[];
}

const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const TOKEN_WS = /[\t\v\f\r ]+/;
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);

const isComment = (line: string): boolean => trimLeftSpace(trimNewline(line)).startsWith('#');

class DirectiveState {
  escapeToken = '\\';
  continuation = DirectiveState.continuationRe('\\');
  done = false;
  seen: Directives = {};
  static continuationRe(e: string): RegExp {
    const x = '\\' + e;
    return new RegExp(`([^${x}])${x}[ \\t]*$|^${x}[ \\t]*$`);
  }
  /** Returns an error message, or undefined. */
  possible(line: string): string | undefined {
    if (this.done) return undefined;
    const m = DIRECTIVE_RE.exec(line);
    if (!m) { this.done = true; return undefined; }
    const key = m[1].toLowerCase() as keyof Directives;
    if (!KNOWN_DIRECTIVES.has(key)) { this.done = true; return undefined; }
    if (this.seen[key] !== undefined) return `only one ${key} parser directive can be used`;
    this.seen[key] = m[2];
    if (key === 'escape') {
      if (m[2] !== '`' && m[2] !== '\\') return `invalid escape token '${m[2]}' does not match \` or \\`;
      this.escapeToken = m[2];
      this.continuation = DirectiveState.continuationRe(m[2]);
    }
    return undefined;
  }
}

interface Parsed { args: string[]; json: boolean; pairs?: KeyValue[]; sub?: Node }

class LineError extends Error {}

function parseNameVal(rest: string, key: string, d: DirectiveState): Parsed {
  const words = parseWords(rest, d.escapeToken);
  if (words.length === 0) return { args: [], json: false, pairs: [] };
  if (!words[0].includes('=')) {
    const m = /[\t\v\f\r ]+/.exec(rest);
    if (!m) throw new LineError(`${key} must have two arguments`);
    const k = rest.slice(0, m.index);
    const v = rest.slice(m.index + m[0].length);
    return { args: [k, v], json: false, pairs: [{ key: k, value: v, noDelim: true }] };
  }
  const pairs: KeyValue[] = [];
  for (const w of words) {
    const i = w.indexOf('=');
    if (i < 0) throw new LineError(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    pairs.push({ key: w.slice(0, i), value: w.slice(i + 1), noDelim: false });
  }
  return { args: pairs.flatMap((p) => [p.key, p.value]), json: false, pairs };
}

function parseMaybeJSON(rest: string): Parsed {
  if (rest === '') return { args: [], json: false };
  const arr = parseJSONArray(rest);
  if (arr) return { args: arr, json: true };
  return { args: [rest], json: false };
}

function parseMaybeJSONToList(rest: string): Parsed {
  const arr = parseJSONArray(rest);
  if (arr) return { args: arr, json: true };
  return { args: splitWhitespace(rest), json: false };
}

function dispatchArgs(cmd: string, rest: string, d: DirectiveState, comments: string[], range: SourceRange): Parsed {
  switch (cmd) {
    case 'add': case 'copy': case 'volume': return parseMaybeJSONToList(rest);
    case 'arg': return { args: parseWords(rest, d.escapeToken), json: false };
    case 'cmd': case 'entrypoint': case 'run': case 'shell': return parseMaybeJSON(rest);
    case 'env': return parseNameVal(rest, 'ENV', d);
    case 'label': return parseNameVal(rest, 'LABEL', d);
    case 'expose': case 'from': return { args: splitWhitespace(rest), json: false };
    case 'healthcheck': {
      let sep = 0;
      while (sep < rest.length && !isSpace(rest[sep])) sep++;
      let next = sep;
      while (next < rest.length && isSpace(rest[next])) next++;
      if (sep === 0) return { args: [], json: false };
      const c = parseMaybeJSON(rest.slice(next));
      return { args: [rest.slice(0, sep), ...c.args], json: c.json };
    }
    case 'maintainer': case 'stopsignal': case 'user': case 'workdir':
      return { args: rest === '' ? [] : [rest], json: false };
    case 'onbuild': {
      if (rest === '') return { args: [], json: false };
      const sub = nodeFromLine(rest, d, comments, range);
      return { args: [rest], json: false, sub };
    }
    default: return { args: [], json: false };
  }
}

function nodeFromLine(line: string, d: DirectiveState, comments: string[], range: SourceRange): Node {
  const trimmed = trimSpace(line);
  const m = TOKEN_WS.exec(trimmed);
  const rawKeyword = m ? trimmed.slice(0, m.index) : trimmed;
  const afterKeyword = m ? trimmed.slice(m.index + m[0].length) : '';
  const { flags, rest } = m ? extractFlags(afterKeyword) : { flags: [], rest: '' };
  const keyword = rawKeyword.toLowerCase();
  const parsed = dispatchArgs(keyword, trimSpace(rest), d, comments, range);
  return {
    keyword, rawKeyword, original: line, flags, args: parsed.args, json: parsed.json,
    pairs: parsed.pairs, sub: parsed.sub, heredocs: [], comments, range,
  };
}

function canContainHeredoc(node: Node): boolean {
  const n = node.keyword === 'onbuild' && node.sub ? node.sub : node;
  return HEREDOC_INSTRUCTIONS.has(n.keyword) && !n.json;
}

/** Splits into lines keeping line endings, like BuildKit's scanLines. */
function scanLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf('\n', start);
    if (i < 0) { if (start < text.length) lines.push(text.slice(start)); break; }
    lines.push(text.slice(start, i + 1));
    start = i + 1;
  }
  return lines;
}

/**
 * Parses a Dockerfile. `file` names it in errors (`Dockerfile:LINE:COL`). Throws DockerfileError
 * (a UserError) for bad directives, malformed ENV/LABEL, non-string JSON arrays, bad or unterminated
 * heredocs, and a file with no instructions. Unknown instructions are kept (instructions.ts rejects them).
 */
export function parseDockerfile(text: string, file = 'Dockerfile'): ParseResult {
  const d = new DirectiveState();
  const lines = scanLines(text);
  if (lines.length > 0 && lines[0].startsWith('\uFEFF')) lines[0] = lines[0].slice(1);
  const nodes: Node[] = [];
  const warnings: string[] = [];
  const emptyContinuationLines: number[] = [];
  let comments: string[] = [];
  let i = 0;
  const at = (line: number, col = 1): SourceRange => ({ startLine: line, endLine: line, column: col });
  const processLine = (raw: string, stripLeft: boolean, lineNo: number): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    const err = d.possible(token);
    if (err) throw new DockerfileError(file, at(lineNo), err, trimNewline(raw), 'parser directives (# syntax=, # escape=, # check=) may each appear once, at the very top');
    return token.startsWith('#') ? '' : token;
  };
  while (i < lines.length) {
    const raw = lines[i];
    // As BuildKit: an empty `#` line ends the comments so far, and a parser directive is not one.
    if (isComment(raw)) {
      const c = trimSpace(trimLeftSpace(trimNewline(raw)).slice(1));
      comments = c === '' ? [] : [...comments, c];
    }
    const wasDirective = !d.done && isComment(raw);
    const processed = processLine(raw, true, i + 1);
    if (wasDirective && !d.done) comments = comments.slice(0, -1);
    i++;
    const startLine = i;
    const column = trimNewline(raw).length - trimLeftSpace(trimNewline(raw)).length + 1;
    let line = processed;
    let endOfLine = true;
    if (d.continuation.test(line)) { line = line.replace(d.continuation, '$1'); endOfLine = false; }
    if (endOfLine && line === '') continue;
    let emptyContinuation = false;
    while (!endOfLine && i < lines.length) {
      const craw = lines[i];
      const c = processLine(craw, false, i + 1);
      i++;
      if (isComment(craw)) continue;
      if (trimLeftSpace(trimNewline(c)).length === 0) { emptyContinuation = true; continue; }
      let cl = c;
      endOfLine = true;
      if (d.continuation.test(cl)) { cl = cl.replace(d.continuation, '$1'); endOfLine = false; }
      line += cl;
    }
    if (emptyContinuation) emptyContinuationLines.push(i);
    if (emptyContinuation) warnings.push(`[WARNING]: Empty continuation line found in:\n    ${line}`);
    const range: SourceRange = { startLine, endLine: i, column };
    let node: Node;
    try {
      node = nodeFromLine(line, d, comments, range);
    } catch (e) {
      if (e instanceof NotStringArray) {
        throw new DockerfileError(file, range, 'when using JSON array syntax, arrays must be comprised of strings only', line, 'quote every element, e.g. ["executable", "arg1"]');
      }
      if (e instanceof LineError) throw new DockerfileError(file, range, e.message, line, 'write name=value pairs, e.g. ENV KEY=value OTHER="two words"');
      throw e;
    }
    if (canContainHeredoc(node)) {
      let markers: HeredocMarker[];
      try { markers = heredocsFromLine(line); } catch (e) {
        throw new DockerfileError(file, range, e instanceof Error ? e.message : String(e), line, 'a heredoc is written <<WORD, <<-WORD, <<"WORD" or <<\'WORD\'');
      }
      const bodies = readHeredocBodies(lines, i, markers);
      i = bodies.next;
      if ('unterminated' in bodies) {
        const h = bodies.unterminated;
        throw new DockerfileError(file, { startLine, endLine: i, column }, `unterminated heredoc ${h.name}`, line,
          `end the heredoc with a line containing only ${h.name}${h.chomp ? ' (leading tabs allowed)' : ''}`);
      }
      const target = node.keyword === 'onbuild' && node.sub ? node.sub : node;
      target.heredocs.push(...bodies.heredocs);
      range.endLine = i;
    }
    nodes.push(node);
    comments = [];
  }
  if (warnings.length > 0) warnings.push('[WARNING]: Empty continuation lines will become errors in a future release.');
  if (nodes.length === 0) {
    throw new DockerfileError(file, at(Math.max(lines.length, 1)), 'file with no instructions', '', 'a Dockerfile needs at least a FROM instruction');
  }
  return { nodes, escapeToken: d.escapeToken, directives: d.seen, warnings, emptyContinuationLines };
}
