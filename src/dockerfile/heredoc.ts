// Heredocs in RUN/COPY/ADD (BuildKit's parser heredoc support): finding `[N]<<[-]WORD` markers on
// an instruction line, reading each body up to its delimiter, and `<<-` tab stripping.
import { ShellLex } from './shell-lex.ts';
import { trimNewline } from './words.ts';

export interface Heredoc {
  /** The delimiter word (quotes removed), e.g. `EOF`. */
  name: string;
  /** The `N` of `N<<EOF` (0 when absent). */
  fileDescriptor: number;
  /** False when any part of the delimiter was quoted: the body is not expanded. */
  expand: boolean;
  /** `<<-`: leading tabs are stripped from body lines (see `chompHeredoc`). */
  chomp: boolean;
  /** The body exactly as written, every line with its newline. */
  content: string;
}

/** A heredoc marker as found on the instruction line: everything but the body. */
export type HeredocMarker = Omit<Heredoc, 'content'>;

const HEREDOC_RE = /^(\d*)<<(-?)\s*([^<]*)$/;

/** `<<-` bodies: strip leading tabs from every line (BuildKit's ChompHeredocContent). */
export function chompHeredoc(content: string): string { return content.replace(/^\t+/gm, ''); }

/** Parses `[N]<<[-]WORD` (one shell word); undefined when `word` is not a heredoc marker. */
export function parseHeredocMarker(word: string): HeredocMarker | undefined {
  const m = HEREDOC_RE.exec(word);
  if (!m || m[3].length === 0) return undefined;
  const lex = new ShellLex({ skipUnsetEnv: true });
  const words = lex.processWords(m[3], new Map());
  if (words.length !== 1) return undefined;
  const raw = new ShellLex({ skipUnsetEnv: true, rawQuotes: true }).processWords(m[3], new Map());
  if (raw.length !== words.length) return undefined;
  const quotes = (s: string): number => (s.match(/['"]/g) ?? []).length;
  return {
    name: words[0], fileDescriptor: m[1] === '' ? 0 : Number(m[1]),
    expand: quotes(words[0]) === quotes(raw[0]), chomp: m[2] === '-',
  };
}

/** Every heredoc marker on an instruction line, in order. */
export function heredocsFromLine(line: string): HeredocMarker[] {
  let words: string[];
  try {
    words = new ShellLex({ rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).processWords(line, new Map());
  } catch {
    words = []; // BuildKit ignores lexing errors here
  }
  const out: HeredocMarker[] = [];
  for (const w of words) {
    const h = parseHeredocMarker(w);
    if (h) out.push(h);
  }
  return out;
}

export type HeredocBodies =
  | { heredocs: Heredoc[]; next: number }
  | { unterminated: HeredocMarker; next: number };

/**
 * Reads the body of each marker in turn from `lines[start]` on, each up to a line holding only its
 * delimiter (after leading tabs, for `<<-`). `next` is the index of the first line not consumed.
 */
export function readHeredocBodies(lines: string[], start: number, markers: HeredocMarker[]): HeredocBodies {
  const heredocs: Heredoc[] = [];
  let i = start;
  for (const h of markers) {
    let content = '';
    let terminated = false;
    while (i < lines.length) {
      const b = lines[i];
      i++;
      let term = trimNewline(b);
      if (h.chomp) term = term.replace(/^\t+/, '');
      if (term === h.name) { terminated = true; break; }
      content += b;
    }
    if (!terminated) return { unterminated: h, next: i };
    heredocs.push({ ...h, content });
  }
  return { heredocs, next: i };
}
