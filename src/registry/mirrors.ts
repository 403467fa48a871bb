// Pull mirrors, read from where users already configure them — containers' registries.conf (v2
// `[[registry]]` with `prefix`/`location`/`[[registry.mirror]]`), Docker's daemon.json
// `registry-mirrors` (Docker Hub only, as dockerd applies them) and BuildKit's buildkitd.toml
// `[registry."host"] mirrors` — plus `--registry-mirror HOST=MIRROR`. A pull tries the mirrors of
// the longest matching prefix in order, then the upstream; digests are verified as always, so a
// mirror can never change what an image is.
import { parse as parseToml } from 'smol-toml';
import { UserError } from '../errors.ts';
import { parseReference, type Reference } from './reference.ts';

export interface Mirror {
  /** `host[:port][/path]` that replaces the rule's prefix. */
  location: string;
  /** Plain http or an unverified certificate for this mirror. */
  insecure: boolean;
  /** Only pulls by digest go to this mirror (registries.conf `pull-from-mirror = "digest-only"`). */
  digestOnly: boolean;
}

export interface MirrorRule {
  /** `host[:port][/repository prefix]`, matched on whole path components. */
  prefix: string;
  mirrors: Mirror[];
  /** registries.conf `location` when it differs from `prefix`: pulls go there instead of upstream. */
  rewrite?: Mirror;
  /** Where the rule came from, for messages. */
  source: string;
}

/** `docker.io` is also spelled `index.docker.io` and `registry-1.docker.io` in configs. */
function normalizeHost(location: string): string {
  const clean = location.replace(/^[a-z]+:\/\//i, '').replace(/\/+$/, '');
  return clean.replace(/^(index|registry-1)\.docker\.io(?=\/|$)/, 'docker.io');
}

/**
 * `text` as TOML. A file of comments and blank lines only (Debian's registries.conf) is an empty
 * table without running the parser, which costs a cold start 2-3 ms on its 100 comment lines.
 */
function tomlTable(text: string): Record<string, unknown> {
  return /^[ \t]*[^#\s]/m.test(text) ? parseToml(text) : {};
}

function bad(source: string, what: string): UserError {
  return new UserError(`${source}: ${what}`, { hint: 'fix the mirror configuration, or remove it' });
}

/** containers-registries.conf(5), version 2: `[[registry]]` tables with `[[registry.mirror]]`. */
export function parseRegistriesConf(text: string, source: string): MirrorRule[] {
  let doc: Record<string, unknown>;
  try {
    doc = tomlTable(text);
  } catch (e) {
    throw bad(source, `not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const rules: MirrorRule[] = [];
  for (const r of (doc.registry as Array<Record<string, unknown>> | undefined) ?? []) {
    const location = typeof r.location === 'string' ? r.location : undefined;
    const prefix = typeof r.prefix === 'string' ? r.prefix : location;
    if (!prefix || prefix.startsWith('*')) continue; // wildcard prefixes name no upstream to mirror
    const digestOnlyRegistry = r['mirror-by-digest-only'] === true;
    const mirrors = ((r.mirror as Array<Record<string, unknown>> | undefined) ?? []).map((m): Mirror => {
      if (typeof m.location !== 'string' || m.location === '') throw bad(source, `a [[registry.mirror]] of ${prefix} has no location`);
      const pull = typeof m['pull-from-mirror'] === 'string' ? m['pull-from-mirror'] : 'all';
      if (pull === 'tag-only') return { location: normalizeHost(m.location), insecure: m.insecure === true, digestOnly: false };
      return { location: normalizeHost(m.location), insecure: m.insecure === true, digestOnly: digestOnlyRegistry || pull === 'digest-only' };
    });
    const rewrite = location && normalizeHost(location) !== normalizeHost(prefix) ? { location: normalizeHost(location), insecure: r.insecure === true, digestOnly: false } : undefined;
    if (mirrors.length || rewrite) rules.push({ prefix: normalizeHost(prefix), mirrors, rewrite, source });
  }
  return rules;
}

/** Docker's daemon.json: `registry-mirrors` (URLs) apply to Docker Hub only. */
export function parseDaemonJson(text: string, source: string): MirrorRule[] {
  let doc: { 'registry-mirrors'?: unknown; 'insecure-registries'?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (e) {
    throw bad(source, `not valid JSON: ${(e as Error).message}`);
  }
  const list = doc['registry-mirrors'];
  if (list === undefined) return [];
  if (!Array.isArray(list) || !list.every((m) => typeof m === 'string')) throw bad(source, '"registry-mirrors" must be a list of URLs');
  const insecure = new Set(Array.isArray(doc['insecure-registries']) ? (doc['insecure-registries'] as string[]).map(normalizeHost) : []);
  const mirrors = (list as string[]).map((url): Mirror => {
    const location = normalizeHost(url);
    return { location, insecure: url.startsWith('http://') || insecure.has(location), digestOnly: false };
  });
  return mirrors.length ? [{ prefix: 'docker.io', mirrors, source }] : [];
}

/** BuildKit's buildkitd.toml: `[registry."host"] mirrors = [...]`; a mirror's `http`/`insecure` come from its own table. */
export function parseBuildkitdToml(text: string, source: string): MirrorRule[] {
  let doc: { registry?: Record<string, { mirrors?: unknown; http?: unknown; insecure?: unknown }> };
  try {
    doc = tomlTable(text) as typeof doc;
  } catch (e) {
    throw bad(source, `not valid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const tables = doc.registry ?? {};
  const rules: MirrorRule[] = [];
  for (const [host, t] of Object.entries(tables)) {
    if (t.mirrors === undefined) continue;
    if (!Array.isArray(t.mirrors) || !t.mirrors.every((m) => typeof m === 'string')) throw bad(source, `registry."${host}".mirrors must be a list of hosts`);
    const mirrors = (t.mirrors as string[]).map((m): Mirror => {
      const location = normalizeHost(m);
      const own = tables[location] ?? tables[m];
      return { location, insecure: own?.http === true || own?.insecure === true, digestOnly: false };
    });
    if (mirrors.length) rules.push({ prefix: normalizeHost(host), mirrors, source });
  }
  return rules;
}

/** `--registry-mirror HOST=MIRROR` (repeatable; MIRROR may start with http:// for plain http). */
export function parseMirrorFlag(text: string): MirrorRule {
  const at = text.indexOf('=');
  const host = at > 0 ? text.slice(0, at).trim() : '';
  const mirror = at > 0 ? text.slice(at + 1).trim() : '';
  if (!host || !mirror) {
    throw new UserError(`invalid registry mirror "${text}": expected REGISTRY=MIRROR`, { hint: 'for example --registry-mirror docker.io=mirror.gcr.io' });
  }
  return { prefix: normalizeHost(host), mirrors: [{ location: normalizeHost(mirror), insecure: mirror.startsWith('http://'), digestOnly: false }], source: `--registry-mirror ${text}` };
}

/** Hosts of mirrors that may use plain http or an unverified certificate. */
export function insecureMirrorHosts(rules: MirrorRule[]): string[] {
  return [...new Set(rules.flatMap((r) => [...r.mirrors, ...(r.rewrite ? [r.rewrite] : [])].filter((m) => m.insecure).map((m) => m.location.split('/')[0])))];
}

/**
 * Where to pull `ref` from, in order: each mirror of the longest matching rule (those that take
 * this kind of reference), then the upstream — the reference itself, or the rule's rewrite.
 */
export function pullSources(rules: MirrorRule[], ref: Reference): Reference[] {
  const name = `${ref.registry}/${ref.repository}`;
  const matching = rules.filter((r) => name === r.prefix || name.startsWith(r.prefix + '/'))
    .sort((a, b) => b.prefix.length - a.prefix.length);
  const rule = matching[0];
  if (!rule) return [ref];
  const target = ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`;
  const at = (m: Mirror) => parseReference(`${m.location}${name.slice(rule.prefix.length)}${target}`);
  return [...rule.mirrors.filter((m) => !m.digestOnly || ref.digest).map(at), rule.rewrite ? at(rule.rewrite) : ref];
}
