// Go's filepath.Match for one path component (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes), and
// patternmatcher-style patterns with `**` for --exclude.
import { UserError } from '../errors.ts';

const cache = new Map<string, RegExp>();

export function hasGlobMeta(s: string): boolean {
  return /[*?[\\]/.test(s);
}

function componentRegex(pat: string): string {
  let re = '';
  for (let i = 0; i < pat.length; i++) {
    const c = pat[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      if (i + 1 >= pat.length) throw new UserError(`bad pattern ${JSON.stringify(pat)}: trailing backslash`);
      re += escape(pat[++i]);
    } else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (pat[j] === '^') { cls += '^'; j++; }
      let first = true;
      while (j < pat.length && (pat[j] !== ']' || first)) {
        if (pat[j] === ']' && first) throw new UserError(`bad pattern ${JSON.stringify(pat)}: empty character class`);
        first = false;
        let ch = pat[j];
        if (ch === '\\') { j++; ch = pat[j] ?? ''; }
        cls += ch === '-' && pat[j - 1] !== '\\' && !cls.endsWith('^') && cls !== '' ? '-' : escape(ch);
        j++;
      }
      if (j >= pat.length) throw new UserError(`bad pattern ${JSON.stringify(pat)}: unterminated character class`);
      re += `(?!/)[${cls}]`;
      i = j;
    } else re += escape(c);
  }
  return re;
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? '\\' + c : c;
}

/** filepath.Match: `pattern` and `name` are whole paths; `*` never crosses `/`. */
export function globMatch(pattern: string, name: string): boolean {
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp('^' + pattern.split('/').map(componentRegex).join('/') + '$', 's');
    cache.set(pattern, re);
  }
  return re.test(name);
}

function componentMatch(pat: string, name: string): boolean {
  let re = cache.get('c:' + pat);
  if (!re) { re = new RegExp('^' + componentRegex(pat) + '$', 's'); cache.set('c:' + pat, re); }
  return re.test(name);
}

/** --exclude / .dockerignore style: `**` spans any number of components; a match on a parent excludes its children. */
export function excludeMatch(pattern: string, name: string): boolean {
  const pp = pattern.split('/').filter((p) => p !== '' && p !== '.');
  const np = name.split('/').filter((p) => p !== '');
  const m = (i: number, j: number): boolean => {
    if (i === pp.length) return j > 0 || np.length === 0;
    if (pp[i] === '**') {
      for (let k = j; k <= np.length; k++) if (m(i + 1, k)) return true;
      return false;
    }
    return j < np.length && componentMatch(pp[i], np[j]) && m(i + 1, j + 1);
  };
  return m(0, 0);
}
