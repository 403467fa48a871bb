// Shell patterns of `${VAR#p}`, `${VAR%p}`, `${VAR/p/r}`: `*`, `?` and `\x`, matched with Go
// regexp (RE2) leftmost-first semantics by a Pike VM, so matching is linear in the value and a
// pattern like `*a*a*a*b` can never hang the way a backtracking RegExp would.
import { UserError } from '../errors.ts';

type Op =
  | { op: 'char'; c: string }
  | { op: 'any' } // Go's `.`: any rune but \n
  | { op: 'split'; x: number; y: number } // try x first
  | { op: 'jmp'; x: number }
  | { op: 'match' };

export interface CompiledPattern { prog: Op[] }

/** Compiles like BuildKit's convertShellPatternToRegex (`*` greedy or lazy, `?` any one char). */
export function compileShellPattern(pattern: string, greedy: boolean): CompiledPattern {
  const chars = Array.from(pattern);
  const prog: Op[] = [];
  for (let i = 0; i < chars.length; i++) {
    const tok = chars[i];
    if (tok === '*') {
      const l = prog.length;
      prog.push(greedy ? { op: 'split', x: l + 1, y: l + 3 } : { op: 'split', x: l + 3, y: l + 1 }, { op: 'any' }, { op: 'jmp', x: l });
      continue;
    }
    if (tok === '?') { prog.push({ op: 'any' }); continue; }
    if (tok === '\\') {
      const nx = chars[i + 1];
      if (nx === '}' || nx === '/') continue; // the escape belongs to ${…} syntax, not the pattern
      if (nx !== '*' && nx !== '?' && nx !== '\\') {
        throw new UserError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${nx ?? ''}'`, { hint: 'in ${VAR#pattern} only \\*, \\? and \\\\ are escapes' });
      }
      prog.push({ op: 'char', c: nx });
      i++;
      continue;
    }
    prog.push({ op: 'char', c: tok });
  }
  prog.push({ op: 'match' });
  return { prog };
}

/** Leftmost-first match of `p` in `s` (code points) starting at `from`; [start, end) or undefined. */
export function execPattern(p: CompiledPattern, s: string[], from: number, anchored: boolean): [number, number] | undefined {
  const prog = p.prog;
  let clist: { pc: number; start: number }[] = [];
  let matched: [number, number] | undefined;
  const add = (list: { pc: number; start: number }[], seen: Uint8Array, pc: number, start: number): void => {
    if (seen[pc]) return;
    seen[pc] = 1;
    const op = prog[pc];
    if (op.op === 'jmp') add(list, seen, op.x, start);
    else if (op.op === 'split') { add(list, seen, op.x, start); add(list, seen, op.y, start); } else list.push({ pc, start });
  };
  add(clist, new Uint8Array(prog.length), 0, from);
  for (let i = from; ; i++) {
    const nlist: { pc: number; start: number }[] = [];
    const nseen = new Uint8Array(prog.length);
    for (const th of clist) {
      const op = prog[th.pc];
      if (op.op === 'match') { matched = [th.start, i]; break; } // lower-priority threads are cut
      if (i >= s.length) continue;
      if ((op.op === 'char' && s[i] === op.c) || (op.op === 'any' && s[i] !== '\n')) add(nlist, nseen, th.pc + 1, th.start);
    }
    if (i >= s.length) break;
    // Unanchored search: a new attempt starting at i+1, lowest priority, until something matched.
    if (!anchored && matched === undefined) add(nlist, nseen, 0, i + 1);
    if (nlist.length === 0) break;
    clist = nlist;
  }
  return matched;
}

/** Go's Regexp.Expand of a ReplaceAllString template with only group 0 (`$0`, `${0}`, `$$`). */
function expandTemplate(template: string, whole: string): string {
  let out = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c !== '$' || i + 1 >= template.length) { out += c; continue; }
    if (template[i + 1] === '$') { out += '$'; i++; continue; }
    let name: string | undefined;
    let end = i;
    if (template[i + 1] === '{') {
      const m = /^\{([A-Za-z0-9_]+)\}/.exec(template.slice(i + 1));
      if (m) { name = m[1]; end = i + m[0].length; }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(template.slice(i + 1));
      if (m) { name = m[0]; end = i + m[0].length; }
    }
    if (name === undefined) { out += c; continue; }
    if (/^\d+$/.test(name) && Number(name) === 0) out += whole;
    i = end;
  }
  return out;
}

/** `${VAR#p}` / `${VAR##p}`. */
export function trimShellPrefix(pattern: string, value: string, greedy: boolean): string {
  const s = Array.from(value);
  const m = execPattern(compileShellPattern(pattern, greedy), s, 0, true);
  return m ? s.slice(m[1]).join('') : value;
}

function reversePattern(pattern: string): string {
  const r = Array.from(pattern);
  const out: string[] = new Array(r.length);
  const last = r.length - 1;
  for (let i = 0; i <= last;) {
    const o = last - i;
    if (r[i] === '\\' && i !== last) { out[o - 1] = r[i]; out[o] = r[i + 1]; i += 2; } else { out[o] = r[i]; i++; }
  }
  return out.join('');
}

/** `${VAR%p}` / `${VAR%%p}`: BuildKit reverses pattern and value and trims a prefix. */
export function trimShellSuffix(pattern: string, value: string, greedy: boolean): string {
  const rev = (x: string): string => Array.from(x).reverse().join('');
  return rev(trimShellPrefix(reversePattern(pattern), rev(value), greedy));
}

/** `${VAR/p/r}` (first match, literal replacement) and `${VAR//p/r}` (Go ReplaceAllString). */
export function replaceShellPattern(pattern: string, value: string, replacement: string, all: boolean): string {
  const p = compileShellPattern(pattern, true);
  const s = Array.from(value);
  if (!all) {
    const m = execPattern(p, s, 0, false);
    return m ? s.slice(0, m[0]).join('') + replacement + s.slice(m[1]).join('') : value;
  }
  let out = '';
  let last = 0;
  let prevEnd = -1;
  for (let pos = 0; pos <= s.length;) {
    const m = execPattern(p, s, pos, false);
    if (!m) break;
    let accept = true;
    if (m[1] === pos && m[0] === m[1]) {
      if (m[0] === prevEnd) accept = false;
      pos++;
    } else pos = m[1];
    prevEnd = m[1];
    if (accept) {
      out += s.slice(last, m[0]).join('') + expandTemplate(replacement, s.slice(m[0], m[1]).join(''));
      last = m[1];
    }
  }
  return out + s.slice(last).join('');
}
