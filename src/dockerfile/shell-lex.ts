// Word expansion as BuildKit's shell lexer does it (frontend/dockerfile/shell/lex.go): `$VAR`,
// `${VAR}`, the `${VAR<op>word}` modifiers, single/double quotes, the escape token, and splitting
// into words on unquoted whitespace after expansion. Errors are UserErrors without a location; the
// caller (instructions/stages) adds `Dockerfile:LINE:COL`.
import { UserError } from '../errors.ts';
import { replaceShellPattern, trimShellPrefix, trimShellSuffix } from './shell-pattern.ts';

export interface LexOptions {
  /** `\` (default) or `` ` `` from the escape directive. */
  escapeToken?: string;
  /** Keep quote characters in the output (used for heredoc names and RUN display). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave `$NAME` / `${NAME...}` text in place when NAME is unset. */
  skipUnsetEnv?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
}

export interface ExpandResult {
  /** The word after expansion and quote removal. */
  result: string;
  /** The same split on unquoted whitespace (whitespace from variable values splits too). */
  words: string[];
  /** Variable names looked up and found / not found. */
  matched: Set<string>;
  unmatched: Set<string>;
}

export type EnvLookup = ReadonlyMap<string, string>;

const EOF = -1;
// Go's unicode.IsSpace/IsLetter/IsDigit. ASCII is answered directly; the Unicode classes are made
// on the first other character (each \p{…} pattern takes V8 ~0.4 ms to build, on every start).
let unicode: { space: RegExp; letter: RegExp; digit: RegExp } | undefined;
const classes = () => (unicode ??= { space: /^\p{White_Space}$/u, letter: /^\p{L}$/u, digit: /^\p{Nd}$/u });
const ascii = (c: string): boolean => c.charCodeAt(0) < 0x80;
const isSpace = (c: string): boolean => (ascii(c) ? c === ' ' || (c >= '\t' && c <= '\r') : classes().space.test(c));
const isDigit = (c: string): boolean => (ascii(c) ? c >= '0' && c <= '9' : classes().digit.test(c));
const isLetter = (c: string): boolean => (ascii(c) ? (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') : classes().letter.test(c));

class Scanner {
  private readonly chars: string[];
  private pos = 0;
  constructor(text: string) { this.chars = Array.from(text); }
  peek(): string | typeof EOF { return this.pos < this.chars.length ? this.chars[this.pos] : EOF; }
  next(): string | typeof EOF { return this.pos < this.chars.length ? this.chars[this.pos++] : EOF; }
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length !== 0) { this.words.push(this.word); this.word = ''; this.inWord = false; }
    } else this.addRawChar(ch);
  }
  addRawChar(ch: string): void { this.word += ch; this.inWord = true; }
  addString(s: string): void { for (const ch of s) this.addChar(ch); }
  addRawString(s: string): void { this.word += s; this.inWord = true; }
  get(): string[] {
    if (this.word.length > 0) { this.words.push(this.word); this.word = ''; this.inWord = false; }
    return this.words;
  }
}

class LexError extends Error {}

/** One expansion run over one word; mirrors the state of BuildKit's shellWord. */
class Run {
  private readonly sc: Scanner;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  private rawEscapes: boolean;
  private readonly env: EnvLookup;
  private readonly o: Required<LexOptions>;
  constructor(text: string, env: EnvLookup, o: Required<LexOptions>) {
    this.env = env;
    this.o = o;
    this.sc = new Scanner(text);
    this.rawEscapes = o.rawEscapes;
  }

  processStopOn(stop: string | typeof EOF, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = new Words();
      for (let ch = this.sc.peek(); ch !== EOF; ch = this.sc.peek()) {
        if (stop !== EOF && ch === stop) { this.sc.next(); return { result, words: words.get() }; }
        if (ch === '$' || (!this.o.skipProcessQuotes && (ch === "'" || ch === '"'))) {
          const tmp = ch === '$' ? this.processDollar() : ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          if (ch === '$') words.addString(tmp); else words.addRawString(tmp);
          continue;
        }
        if (ch === '<') {
          // `<<` with the blanks after it is one piece of the word (BuildKit's processPossibleHeredoc,
          // dockerfile 1.16+), so `<<  EOF` stays one heredoc word.
          const tmp = this.processPossibleHeredoc();
          result += tmp;
          words.addRawString(tmp);
          continue;
        }
        let c = this.sc.next() as string;
        if (c === this.o.escapeToken) {
          if (this.rawEscapes) { words.addRawChar(c); result += c; }
          const n = this.sc.next();
          if (n === EOF) break;
          c = n;
          words.addRawChar(c);
        } else words.addChar(c);
        result += c;
      }
      if (stop !== EOF) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
      return { result, words: words.get() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processPossibleHeredoc(): string {
    this.sc.next();
    if (this.sc.peek() !== '<') return '<';
    this.sc.next();
    let result = '<<';
    for (let p = this.sc.peek(); p === ' ' || p === '\t' || p === '\r'; p = this.sc.peek()) result += this.sc.next() as string;
    return result;
  }

  private processSingleQuote(): string {
    let result = '';
    const open = this.sc.next() as string;
    if (this.o.rawQuotes) result += open;
    for (;;) {
      const ch = this.sc.next();
      if (ch === EOF) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") { if (this.o.rawQuotes) result += ch; return result; }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.sc.next() as string;
    if (this.o.rawQuotes) result += open;
    for (;;) {
      const p = this.sc.peek();
      if (p === EOF) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (p === '"') { this.sc.next(); if (this.o.rawQuotes) result += '"'; return result; }
      if (p === '$') { result += this.processDollar(); continue; }
      let ch = this.sc.next() as string;
      if (ch === this.o.escapeToken) {
        if (this.rawEscapes) result += ch;
        const n = this.sc.peek();
        if (n === EOF) continue; // a trailing escape inside the word is dropped
        if (n === '"' || n === '$' || n === this.o.escapeToken) ch = this.sc.next() as string;
      }
      result += ch;
    }
  }

  private getEnv(name: string): { value: string; set: boolean } {
    const v = this.env.get(name);
    if (v === undefined) { this.unmatched.add(name); return { value: '', set: false }; }
    this.matched.add(name);
    return { value: v, set: true };
  }

  private processName(): string {
    let name = '';
    for (let ch = this.sc.peek(); ch !== EOF; ch = this.sc.peek()) {
      if (name.length === 0 && isDigit(ch)) {
        while (this.sc.peek() !== EOF && isDigit(this.sc.peek() as string)) name += this.sc.next();
        return name;
      }
      if (name.length === 0 && '@*#?-$!0'.includes(ch)) return this.sc.next() as string;
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.sc.next();
    }
    return name;
  }

  private processDollar(): string {
    this.sc.next();
    if (this.sc.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const { value, set } = this.getEnv(name);
      if (!set && this.o.skipUnsetEnv) return '$' + name;
      return value;
    }
    this.sc.next();
    const first = this.sc.peek();
    if (first === EOF) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.sc.next();
    let chs = ch === EOF ? '\uFFFD' : ch;
    let nullIsUnset = false;
    if (ch === '}') {
      const { value, set } = this.getEnv(name);
      if (!set && this.o.skipUnsetEnv) return `\${${name}}`;
      return value;
    }
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.sc.next();
      chs += ch === EOF ? '\uFFFD' : ch;
    }
    if (ch === ':' || ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%' || nullIsUnset) {
      const raw = ch === '#' || ch === '%';
      let word: string;
      try {
        word = this.processStopOn('}', raw).result;
      } catch (e) {
        if (this.sc.peek() === EOF) throw new LexError("syntax error: missing '}'");
        throw e;
      }
      const { value, set } = this.getEnv(name);
      if (this.o.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
      switch (ch) {
        case '-': return !set || (nullIsUnset && value === '') ? word : value;
        case '+': return !set || (nullIsUnset && value === '') ? '' : word;
        case '?':
          if (!set) throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        case '%': case '#': {
          let greedy = false;
          if (word.length > 0 && word[0] === ch) { greedy = true; word = word.slice(1); }
          return ch === '%' ? trimShellSuffix(word, value, greedy) : trimShellPrefix(word, value, greedy);
        }
        default: throw new LexError(`unsupported modifier (${chs}) in substitution`);
      }
    }
    if (ch === '/') {
      const all = this.sc.peek() === '/';
      if (all) this.sc.next();
      let pattern: string;
      try { pattern = this.processStopOn('/', true).result; } catch (e) {
        if (this.sc.peek() === EOF) throw new LexError("syntax error: missing '/' in ${}");
        throw e;
      }
      let replacement: string;
      try { replacement = this.processStopOn('}', true).result; } catch (e) {
        if (this.sc.peek() === EOF) throw new LexError("syntax error: missing '}'");
        throw e;
      }
      const { value, set } = this.getEnv(name);
      if (this.o.skipUnsetEnv && !set) return `\${${name}/${pattern}/${replacement}}`;
      return replaceShellPattern(pattern, value, replacement, all);
    }
    throw new LexError(`unsupported modifier (${chs}) in substitution`);
  }
}

/** BuildKit's shell.Lex: expands one word against an environment. */
export class ShellLex {
  private readonly o: Required<LexOptions>;
  constructor(options: LexOptions = {}) {
    this.o = {
      escapeToken: options.escapeToken ?? '\\', rawQuotes: options.rawQuotes ?? false,
      rawEscapes: options.rawEscapes ?? false, skipUnsetEnv: options.skipUnsetEnv ?? false,
      skipProcessQuotes: options.skipProcessQuotes ?? false,
    };
  }

  /** Expands `word`; throws a UserError (`failed to process "word": …`) on bad syntax or `${X?msg}`. */
  process(word: string, env: EnvLookup): ExpandResult {
    const run = new Run(word, env, this.o);
    try {
      const { result, words } = run.processStopOn(EOF, this.o.rawEscapes);
      return { result, words, matched: run.matched, unmatched: run.unmatched };
    } catch (e) {
      if (e instanceof LexError) throw new UserError(`failed to process ${goQuote(word)}: ${e.message}`, { hint: 'check quotes and ${…} syntax in this instruction' });
      if (e instanceof UserError) throw new UserError(`failed to process ${goQuote(word)}: ${e.message}`, { hint: e.hint });
      throw e;
    }
  }

  processWord(word: string, env: EnvLookup): string { return this.process(word, env).result; }
  processWords(word: string, env: EnvLookup): string[] { return this.process(word, env).words; }
}

/** Go's strconv.Quote (`%q`): used in BuildKit's messages and history strings. */
export function goQuote(s: string): string {
  // Printable ASCII is most of every Dockerfile: it skips the Unicode-class test below, whose first
  // use alone costs milliseconds (a cached build quotes every instruction for its history).
  if (/^[\x20-\x7e]*$/.test(s) && !/["\\]/.test(s)) return `"${s}"`;
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp >= 0x20 && cp < 0x7f) out += ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\\ufffd';
    else if (/^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(ch) || ch === ' ') out += ch;
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}
