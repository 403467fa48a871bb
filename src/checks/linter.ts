// The check configuration and the collector: `# check=skip=A,B;error=true;experimental=C` parsed
// as BuildKit's linter.ParseLintOptions does, merged with `# check=` comments right above a stage or
// an instruction, and the warnings found (rule, message, lines). `error=true` turns any warning
// into one failure after all checks ran, as BuildKit's Linter.Error does.
import { UserError } from '../errors.ts';
import { rule, type RuleName } from './rules.ts';

export interface CheckConfig {
  skipAll: boolean;
  skip: Set<string>;
  experimentalAll: boolean;
  experimental: Set<string>;
  error: boolean;
}

/** One warning, where it applies (1-based lines of the instruction, or none). */
export interface CheckWarning {
  rule: RuleName;
  description: string;
  url?: string;
  message: string;
  /** First and last line; undefined when the warning has no place in the Dockerfile. */
  lines?: { start: number; end: number };
}

const list = (v: string): string[] => v.split(',').map((r) => r.trim());

/** Go's strconv.ParseBool. */
function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/** Parses the value of a `check` directive; throws a UserError on a bad option. */
export function parseCheckOptions(text: string): CheckConfig {
  const cfg: CheckConfig = { skipAll: false, skip: new Set(), experimentalAll: false, experimental: new Set(), error: false };
  const s = text.trim();
  if (s === '') return cfg;
  const hint = 'write # check=skip=Rule1,Rule2;error=true;experimental=Rule3 (or skip=all)';
  // Like Go's strings.SplitN(s, ";", 3).
  const parts = s.split(';');
  const limited = parts.length > 3 ? [...parts.slice(0, 2), parts.slice(2).join(';')] : parts;
  for (const p of limited) {
    const eq = p.indexOf('=');
    if (eq < 0) throw new UserError(`failed to parse check options: invalid check option ${JSON.stringify(p)}`, { hint });
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    if (k === 'skip') { if (v === 'all') cfg.skipAll = true; else cfg.skip = new Set(list(v)); }
    else if (k === 'experimental') { if (v === 'all') cfg.experimentalAll = true; else cfg.experimental = new Set(list(v)); }
    else if (k === 'error') {
      const b = parseBool(v);
      if (b === undefined) throw new UserError(`failed to parse check options: failed to parse check option ${JSON.stringify(p)}: invalid syntax`, { hint });
      cfg.error = b;
    } else throw new UserError(`failed to parse check options: invalid check option ${JSON.stringify(k)}`, { hint });
  }
  return cfg;
}

const DIRECTIVE = /^\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;

/** Collects warnings under one configuration; `withComments` gives the one for a stage or step. */
export class Linter {
  readonly config: CheckConfig;
  private readonly found: CheckWarning[];
  private readonly called: Set<string>;

  constructor(config: CheckConfig, shared?: { found: CheckWarning[]; called: Set<string> }) {
    this.config = config;
    this.found = shared?.found ?? [];
    this.called = shared?.called ?? new Set();
  }

  get warnings(): readonly CheckWarning[] { return this.found; }

  /** BuildKit's WithMergedConfigFromComments: the first `check=` among the comments adds its skips. */
  withComments(comments: readonly string[]): Linter {
    for (const c of comments) {
      const m = DIRECTIVE.exec(c);
      if (!m || m[1].toLowerCase() !== 'check') continue;
      let extra: CheckConfig;
      try { extra = parseCheckOptions(m[2].split(' ')[0]); } catch { return this; }
      const cfg: CheckConfig = {
        skipAll: this.config.skipAll || extra.skipAll, skip: new Set([...this.config.skip, ...extra.skip]),
        experimentalAll: this.config.experimentalAll || extra.experimentalAll, experimental: new Set([...this.config.experimental, ...extra.experimental]),
        error: this.config.error,
      };
      return new Linter(cfg, { found: this.found, called: this.called });
    }
    return this;
  }

  run(name: RuleName, lines: { start: number; end: number } | undefined, message: string): void {
    const r = rule(name);
    if (r.experimental) {
      if (!this.config.experimentalAll && !this.config.experimental.has(name)) return;
    } else if (this.config.skipAll || this.config.skip.has(name)) return;
    this.called.add(name);
    this.found.push({ rule: name, description: r.description, ...(r.url ? { url: r.url } : {}), message, ...(lines ? { lines } : {}) });
  }

  /** With `error=true` and a warning found: the error BuildKit fails the build with. */
  error(): UserError | undefined {
    if (!this.config.error || this.called.size === 0) return undefined;
    return new UserError(`lint violation found for rules: ${[...this.called].join(', ')}`, {
      hint: 'fix the warnings above, or skip rules with # check=skip=RULE (error=true in the check directive makes them fail the build)',
    });
  }
}
