// .dockerignore: reading the file (moby/patternmatcher/ignorefile rules), matching paths exactly as
// moby/patternmatcher does (`*`, `?`, `[...]`, `**`, `!` exceptions, parent-directory matches), the
// `<Dockerfile>.dockerignore` precedence, and a context walker that prunes excluded directories
// unless an exception could match below them.
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { join, dirname, isAbsolute } from 'node:path';
import { UserError } from '../errors.ts';
import { cleanPath } from './evaluate.ts';

/** Parses .dockerignore text into patterns (comments, blanks dropped; paths cleaned; leading / removed). */
export function parseDockerignore(text: string): string[] {
  const out: string[] = [];
  let first = true;
  for (let line of text.split('\n')) {
    if (first && line.startsWith('\uFEFF')) line = line.slice(1);
    first = false;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.startsWith('#')) continue;
    let p = line.trim();
    if (p === '') continue;
    const invert = p[0] === '!';
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p[0] === '/') p = p.slice(1);
    }
    out.push(invert ? '!' + p : p);
  }
  return out;
}

interface Pattern {
  text: string;
  exclusion: boolean;
  re: RegExp;
  /** Path components of the cleaned pattern, for "could a descendant match" checks. */
  parts: string[];
  partRes: (RegExp | '**')[];
}

const REGEX_SPECIAL = '.+()|^${}';

/** Go filepath.Match syntax check (bad `[` classes and trailing `\`). */
function checkGlobSyntax(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '\\') { if (i + 1 >= p.length) return false; i++; continue; }
    if (c === '[') {
      let j = i + 1;
      if (p[j] === '^') j++;
      if (p[j] === ']') return false;
      let closed = false;
      for (; j < p.length; j++) {
        if (p[j] === '\\') { j++; if (j >= p.length) return false; continue; }
        if (p[j] === ']') { closed = true; break; }
        if (p[j] === '-' && (p[j + 1] === ']' || j === i + 1)) return false;
      }
      if (!closed) return false;
      i = j;
    }
  }
  return true;
}

/** patternmatcher's compile: the glob → an anchored regex over `/`-separated paths. */
function globToRegexSource(pattern: string): string {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i];
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) re += '.*';
        else re += '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') re += '[^/]';
    else if (REGEX_SPECIAL.includes(ch)) re += '\\' + ch;
    else if (ch === '\\') {
      if (i + 1 < chars.length) { i++; re += '\\' + chars[i]; } else re += '\\\\';
    } else if (ch === '[') {
      // A character class: Go's `[^…]` negation; `!` is literal in Go globs.
      let j = i + 1;
      let cls = '[';
      if (chars[j] === '^') { cls += '^'; j++; }
      for (; j < chars.length && chars[j] !== ']'; j++) {
        if (chars[j] === '\\' && j + 1 < chars.length) { j++; cls += '\\' + chars[j]; } else if (chars[j] === '[' || chars[j] === '/') cls += '\\' + chars[j];
        else cls += chars[j];
      }
      re += cls + ']';
      i = j;
    } else re += ch;
  }
  return re + '$';
}

function compilePattern(raw: string): Pattern | undefined {
  let p = raw.trim();
  if (p === '') return undefined;
  let exclusion = false;
  if (p[0] === '!') {
    if (p.length === 1) throw new UserError('illegal exclusion pattern: "!"', { hint: 'write !path to re-include path' });
    exclusion = true;
    p = p.slice(1);
  }
  p = cleanPath(p);
  if (!checkGlobSyntax(p)) throw new UserError(`syntax error in pattern: ${raw}`, { hint: 'check [ ] classes and trailing \\ in .dockerignore' });
  let re: RegExp;
  try { re = new RegExp(globToRegexSource(p), 'u'); } catch {
    throw new UserError(`syntax error in pattern: ${raw}`, { hint: 'check [ ] classes and trailing \\ in .dockerignore' });
  }
  const parts = p.split('/');
  const partRes = parts.map((part): RegExp | '**' => {
    if (part === '**') return '**';
    try { return new RegExp(globToRegexSource(part), 'u'); } catch { return /^.*$/u; }
  });
  return { text: p, exclusion, re, parts, partRes };
}

/** A compiled .dockerignore. `matches(path)` answers "is this path excluded from the context?" */
export class PatternMatcher {
  readonly patterns: Pattern[];
  readonly hasExclusions: boolean;

  constructor(patterns: string[]) {
    this.patterns = patterns.map(compilePattern).filter((p): p is Pattern => p !== undefined);
    this.hasExclusions = this.patterns.some((p) => p.exclusion);
  }

  /** patternmatcher.MatchesOrParentMatches: excluded if the last matching pattern (for it or a parent dir) is not `!`. */
  matches(file: string): boolean {
    if (this.patterns.length === 0) return false;
    const f = cleanPath(file);
    const parentPath = dirname(f);
    const parents = parentPath === '.' ? [] : parentPath.split('/');
    let matched = false;
    for (const pat of this.patterns) {
      if (pat.exclusion !== matched) continue;
      let m = pat.re.test(f);
      if (!m && parents.length) {
        for (let i = 1; i <= parents.length && !m; i++) m = pat.re.test(parents.slice(0, i).join('/'));
      }
      if (m) matched = !pat.exclusion;
    }
    return matched;
  }

  /**
   * The walker's fast path (patternmatcher.MatchesUsingParentResults): `parent` holds, per
   * pattern, whether it matched the parent directory or an ancestor.
   */
  matchWithParents(file: string, parent: boolean[] | undefined): { excluded: boolean; perPattern: boolean[] } {
    let matched = false;
    const per = new Array<boolean>(this.patterns.length).fill(false);
    for (let i = 0; i < this.patterns.length; i++) {
      const pat = this.patterns[i];
      let m = parent !== undefined && parent[i];
      if (!m) {
        if (pat.exclusion !== matched) continue;
        m = pat.re.test(file);
      }
      per[i] = m;
      if (m) matched = !pat.exclusion;
    }
    return { excluded: matched, perPattern: per };
  }

  /** True when some `!` pattern could match `dir` itself or a path below it. */
  exceptionCouldMatchBelow(dir: string): boolean {
    if (!this.hasExclusions) return false;
    const comps = dir.split('/');
    return this.patterns.some((p) => p.exclusion && prefixCouldMatch(p.partRes, comps));
  }
}

/** Can the component patterns match a path that starts with `comps`? */
function prefixCouldMatch(parts: (RegExp | '**')[], comps: string[], pi = 0, ci = 0): boolean {
  if (ci === comps.length) return true; // the pattern can go on below the directory
  if (pi === parts.length) return false;
  const part = parts[pi];
  if (part === '**') return prefixCouldMatch(parts, comps, pi + 1, ci) || prefixCouldMatch(parts, comps, pi, ci + 1);
  return part.test(comps[ci]) && prefixCouldMatch(parts, comps, pi + 1, ci + 1);
}

/**
 * Reads the ignore patterns for a build: `<dockerfile>.dockerignore` (next to the Dockerfile) wins
 * over `<contextDir>/.dockerignore`. Returns [] when neither exists.
 */
export async function readIgnorePatterns(contextDir: string, dockerfilePath?: string): Promise<{ patterns: string[]; file?: string }> {
  const candidates: string[] = [];
  if (dockerfilePath) {
    const p = isAbsolute(dockerfilePath) ? dockerfilePath : join(contextDir, dockerfilePath);
    candidates.push(p + '.dockerignore');
  }
  candidates.push(join(contextDir, '.dockerignore'));
  for (const file of candidates) {
    let text: string;
    // Synchronous: small files, often missing; a cached build then waits on no thread-pool call.
    try { text = readFileSync(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw new UserError(`cannot read ${file}: ${(e as Error).message}`, { hint: 'check the file permissions' });
    }
    return { patterns: parseDockerignore(text), file };
  }
  return { patterns: [] };
}

export interface ContextEntry {
  /** Relative path with `/` separators, no leading `./`. */
  path: string;
  stat: Stats;
}

/**
 * Walks `dir` and returns every entry the matcher does not exclude, depth-first with each
 * directory's names sorted (Go's filepath.Walk order), with lstat info (symlinks not followed).
 * An excluded directory is never read unless a `!` exception could match below it; if one does,
 * the directory itself is listed before its first included descendant.
 */
export async function walkContext(dir: string, matcher?: PatternMatcher, options: { onReadDir?: (relDir: string) => void } = {}): Promise<ContextEntry[]> {
  const out: ContextEntry[] = [];
  const m = matcher && matcher.patterns.length ? matcher : undefined;
  // Sync calls inside one async function: for many small directories this is several times faster
  // than a promise per lstat, and the walk has nothing else to overlap with.
  await Promise.resolve();
  const walk = (abs: string, rel: string, parent: boolean[] | undefined, pending: ContextEntry[]): void => {
    let names: string[];
    options.onReadDir?.(rel);
    try { names = readdirSync(abs); } catch (e) {
      throw new UserError(`cannot read build context directory ${abs}: ${(e as Error).message}`, { hint: 'check the path and permissions of the build context' });
    }
    names.sort();
    for (const name of names) {
      const childRel = rel ? rel + '/' + name : name;
      const childAbs = abs + '/' + name;
      let excluded = false;
      let per: boolean[] | undefined;
      if (m) { const r = m.matchWithParents(childRel, parent); excluded = r.excluded; per = r.perPattern; }
      let st: Stats;
      try { st = lstatSync(childAbs); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while walking
        throw new UserError(`cannot stat ${childAbs}: ${(e as Error).message}`, { hint: 'check permissions in the build context' });
      }
      const entry = { path: childRel, stat: st };
      if (!excluded) {
        for (const p of pending) out.push(p);
        pending.length = 0;
        out.push(entry);
        if (st.isDirectory()) walk(childAbs, childRel, per, pending);
      } else if (st.isDirectory() && m!.exceptionCouldMatchBelow(childRel)) {
        // Listed only if something below is included (walk() empties `pending` when it includes).
        pending.push(entry);
        walk(childAbs, childRel, per, pending);
        if (pending.length && pending[pending.length - 1] === entry) pending.pop();
      }
    }
  };
  walk(dir, '', undefined, []);
  return out;
}

/** Convenience: patterns for a context + Dockerfile, compiled. */
export async function loadMatcher(contextDir: string, dockerfilePath?: string): Promise<PatternMatcher> {
  return new PatternMatcher((await readIgnorePatterns(contextDir, dockerfilePath)).patterns);
}
