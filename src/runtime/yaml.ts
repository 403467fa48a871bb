// The block YAML that CDI spec files are written in (nvidia-ctk, BuildKit's fixtures): nested
// mappings and sequences by indentation, `- key: value` items, plain / single- / double-quoted
// scalars, one-line flow sequences (`[ro, nosuid]`), comments and a `---` start. Anything else
// (anchors, tags, multi-line scalars, flow mappings with content, several documents) is an error
// that says so, never a guess.

interface Line { indent: number; text: string; n: number }

export class YamlError extends Error {}

function lines(text: string): Line[] {
  const out: Line[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.includes('\t') && /^\s*\t/.test(raw)) throw new YamlError(`line ${i + 1}: tabs cannot indent YAML`);
    const text = raw.trimEnd();
    const body = text.trimStart();
    if (body === '' || body.startsWith('#')) return;
    if (body === '---' && out.length === 0) return;
    if (body === '---' || body === '...') throw new YamlError(`line ${i + 1}: one YAML document only`);
    out.push({ indent: text.length - body.length, text: body, n: i + 1 });
  });
  return out;
}

/** A plain scalar without its trailing comment. */
function stripComment(s: string): string {
  const m = /\s+#/.exec(s);
  return (m ? s.slice(0, m.index) : s).trim();
}

function quoted(s: string, n: number): { value: string; rest: string } {
  if (s[0] === '"') {
    const m = /^"(?:[^"\\]|\\.)*"/.exec(s);
    if (!m) throw new YamlError(`line ${n}: unterminated double-quoted scalar`);
    try {
      return { value: JSON.parse(m[0]) as string, rest: s.slice(m[0].length) };
    } catch {
      throw new YamlError(`line ${n}: an escape in ${m[0]} that slipway does not read`);
    }
  }
  const m = /^'(?:[^']|'')*'/.exec(s);
  if (!m) throw new YamlError(`line ${n}: unterminated single-quoted scalar`);
  return { value: m[0].slice(1, -1).replace(/''/g, "'"), rest: s.slice(m[0].length) };
}

function scalar(raw: string, n: number): unknown {
  const s = raw.trim();
  if (s[0] === '"' || s[0] === "'") {
    const { value, rest } = quoted(s, n);
    if (stripComment(rest) !== '') throw new YamlError(`line ${n}: text after a quoted scalar`);
    return value;
  }
  if (s[0] === '[' || s[0] === '{') return flow(stripComment(s), n);
  if (/^[&*!|>%@`]/.test(s)) throw new YamlError(`line ${n}: "${s[0]}" (anchors, aliases, tags, block scalars) is YAML slipway does not read`);
  const p = stripComment(s);
  if (p === '' || p === '~' || p === 'null') return null;
  if (p === 'true' || p === 'false') return p === 'true';
  if (/^[-+]?(0|[1-9]\d*)$/.test(p)) return Number(p);
  if (/^0o?[0-7]+$/.test(p)) return Number.parseInt(p.replace(/^0o?/, ''), 8); // YAML 1.1 octal, e.g. fileMode: 0666
  if (/^0x[0-9a-f]+$/i.test(p)) return Number.parseInt(p, 16);
  return p;
}

function flow(s: string, n: number): unknown[] | Record<string, never> {
  if (s === '{}') return {};
  if (!s.startsWith('[') || !s.endsWith(']')) throw new YamlError(`line ${n}: flow collections other than [a, b] and {} are YAML slipway does not read`);
  const body = s.slice(1, -1).trim();
  const out: unknown[] = [];
  let rest = body;
  while (rest !== '') {
    let item: unknown;
    if (rest[0] === '"' || rest[0] === "'") {
      const q = quoted(rest, n);
      item = q.value;
      rest = q.rest.trim();
    } else {
      const comma = rest.indexOf(',');
      const text = comma < 0 ? rest : rest.slice(0, comma);
      if (/[[\]{}]/.test(text)) throw new YamlError(`line ${n}: nested flow collections are YAML slipway does not read`);
      item = scalar(text, n);
      rest = comma < 0 ? '' : rest.slice(comma);
    }
    out.push(item);
    if (rest.startsWith(',')) rest = rest.slice(1).trim();
    else if (rest !== '') throw new YamlError(`line ${n}: expected "," in ${s}`);
  }
  return out;
}

/** `key: value` → [key, value text]; undefined when the line is no mapping entry. */
function entry(text: string, n: number): [string, string] | undefined {
  if (text[0] === '"' || text[0] === "'") {
    const { value, rest } = quoted(text, n);
    const m = /^:(\s+|$)/.exec(rest);
    return m ? [value, rest.slice(m[0].length)] : undefined;
  }
  const m = /^([^#:][^:]*?):(\s+|$)/.exec(text);
  return m ? [m[1].trim(), text.slice(m[0].length)] : undefined;
}

class Parser {
  private i = 0;
  private readonly ls: Line[];
  constructor(ls: Line[]) { this.ls = ls; }

  parse(): unknown {
    if (this.ls.length === 0) return null;
    const v = this.block(this.ls[0].indent);
    if (this.i < this.ls.length) throw new YamlError(`line ${this.ls[this.i].n}: unexpected indentation`);
    return v;
  }

  private isItem(l: Line): boolean { return l.text === '-' || l.text.startsWith('- '); }

  private block(indent: number): unknown {
    const l = this.ls[this.i];
    return this.isItem(l) ? this.sequence(indent) : this.mapping(indent);
  }

  private sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    while (this.i < this.ls.length && this.ls[this.i].indent === indent && this.isItem(this.ls[this.i])) {
      const l = this.ls[this.i];
      const content = l.text.slice(1).trimStart();
      if (content === '') {
        this.i++;
        const next = this.ls[this.i];
        out.push(next && next.indent > indent ? this.block(next.indent) : null);
      } else if (this.isItem({ ...l, text: content }) || entry(content, l.n)) {
        // `- key: value` (or `- - x`): a collection whose first line starts after the dash.
        this.ls[this.i] = { indent: indent + (l.text.length - content.length), text: content, n: l.n };
        out.push(this.block(this.ls[this.i].indent));
      } else {
        this.i++;
        out.push(scalar(content, l.n));
      }
    }
    return out;
  }

  private mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    while (this.i < this.ls.length && this.ls[this.i].indent === indent && !this.isItem(this.ls[this.i])) {
      const l = this.ls[this.i];
      const kv = entry(l.text, l.n);
      if (!kv) throw new YamlError(`line ${l.n}: expected "key: value"`);
      if (Object.hasOwn(out, kv[0])) throw new YamlError(`line ${l.n}: key "${kv[0]}" is given twice`);
      this.i++;
      let value: unknown = null;
      if (kv[1].trim() !== '' && !kv[1].trim().startsWith('#')) value = scalar(kv[1], l.n);
      else {
        const next = this.ls[this.i];
        // A sequence may sit at its key's own indentation (as go-yaml writes it).
        if (next && (next.indent > indent || (next.indent === indent && this.isItem(next)))) value = this.block(next.indent);
      }
      Object.defineProperty(out, kv[0], { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
}

/** Parses one YAML document of the subset above into plain JSON values. */
export function parseYaml(text: string): unknown {
  return new Parser(lines(text)).parse();
}
