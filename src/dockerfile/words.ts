// Splitting an instruction line into words, as BuildKit's parser does it: whitespace trimming by
// Go's unicode.IsSpace, builder flags (`--name=value`), shell-form words (quotes and escapes kept
// for later expansion) and the JSON array of exec form.

const WS_SPLIT = /[\t\v\f\r ]+/;
const SPACE = /^\p{White_Space}$/u;
export const isSpace = (c: string): boolean => SPACE.test(c);

export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s[i])) i++;
  return s.slice(i);
}
export function trimSpace(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isSpace(s[a])) a++;
  while (b > a && isSpace(s[b - 1])) b--;
  return s.slice(a, b);
}
export const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');

/** BuildKit's extractBuilderFlags: leading `--words` (quotes and `\` processed) and the rest. */
export function extractFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const ch = pos < line.length ? line[pos] : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || pos + 1 === line.length || line[pos + 1] !== '-') return { flags, rest: line.slice(pos) };
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { flags, rest: line.slice(pos) };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') { quote = ch; blankOK = true; phase = 'quote'; continue; }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        word += line[pos];
        continue;
      }
      word += ch;
      continue;
    }
    if (ch === quote) { phase = 'word'; continue; }
    if (ch === '\\') {
      if (pos + 1 === line.length) { phase = 'word'; continue; }
      pos++;
      word += line[pos];
      continue;
    }
    word += ch;
  }
  return { flags, rest: '' };
}

/** BuildKit's parseWords: whitespace-separated words, quotes and escapes kept for later expansion. */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  const chars = Array.from(rest);
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? chars[pos] : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') { quote = ch; blankOK = true; phase = 'quote'; }
      if (ch === escapeToken) {
        if (pos + 1 === chars.length) continue;
        word += ch;
        pos++;
        ch = chars[pos];
      }
      word += ch;
      continue;
    }
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) { phase = 'word'; continue; }
      pos++;
      word += ch;
      ch = chars[pos];
    }
    word += ch;
  }
  return words;
}

export class NotStringArray extends Error {}

/**
 * Reads `rest` as one JSON array of strings. Text after the array (but whitespace) makes it shell
 * form, as BuildKit's parseJSON does since dockerfile 1.10 (json.Unmarshal of the whole rest).
 */
export function parseJSONArray(rest: string): string[] | undefined {
  const s = trimLeftSpace(rest);
  if (!s.startsWith('[')) return undefined;
  let depth = 0;
  let inStr = false;
  let end = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (c === '\\') i++;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) { end = i + 1; break; }
    }
  }
  if (end < 0 || !/^[ \t\r\n]*$/.test(s.slice(end))) return undefined;
  let value: unknown;
  try { value = JSON.parse(s.slice(0, end)); } catch { return undefined; }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v) => typeof v === 'string')) throw new NotStringArray();
  return value as string[];
}

export const splitWhitespace = (rest: string): string[] => (rest === '' ? [] : rest.split(WS_SPLIT));
