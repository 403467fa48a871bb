// Parsers for the small textual formats buildx and build-push-action accept.
import { UserError } from '../errors.ts';
import { layerCompressions, type LayerCompressionType, type OutputKeys, type OutputSpec } from './types.ts';

/**
 * Splits a list input the way docker/build-push-action does: one item per line, and also on commas
 * unless `commas` is false (build-args, labels and secrets may hold commas). Quoted CSV fields keep
 * their commas. Empty items and `#` comment lines are dropped.
 */
export function splitList(text: string | undefined, opts: { commas?: boolean } = {}): string[] {
  if (!text) return [];
  const out: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (opts.commas === false) out.push(trimmed);
    else out.push(...parseCsvFields(trimmed).map((f) => f.trim()).filter((f) => f !== ''));
  }
  return out;
}

/**
 * Splits `text` at `separator` outside double quotes (RFC 4180 quoting: a field that starts with
 * `"` runs to the closing one, `""` inside is one `"`). `unterminated` tells of a quote left open.
 */
export function splitQuoted(text: string, separator: string): { fields: string[]; unterminated: boolean } {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cur += '"'; i++; }
      else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur.trim() === '') { quoted = true; cur = ''; }
    else if (c === separator) { fields.push(cur); cur = ''; }
    else cur += c;
  }
  fields.push(cur);
  return { fields, unterminated: quoted };
}

/** One CSV record, as buildx parses `--output`/`--secret` values. */
export function parseCsvFields(line: string): string[] {
  const { fields, unterminated } = splitQuoted(line, ',');
  if (unterminated) throw new UserError(`unterminated quote in "${line}"`, { hint: 'close the " or remove it' });
  return fields;
}

/** `KEY=VALUE` → [KEY, VALUE]; a bare `KEY` takes its value from `env` (as `--build-arg KEY` does). */
export function parseKeyValue(text: string, what: string, env?: Record<string, string | undefined>): [string, string] | undefined {
  const eq = text.indexOf('=');
  if (eq === 0) throw new UserError(`invalid ${what} "${text}": expected KEY=VALUE`);
  if (eq < 0) {
    if (!env) throw new UserError(`invalid ${what} "${text}": expected KEY=VALUE`);
    const v = env[text];
    return v === undefined ? undefined : [text, v];
  }
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function csvMap(text: string, what: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const field of parseCsvFields(text)) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid ${what} "${text}": field "${field}" is not key=value`);
    m.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1));
  }
  return m;
}

// The keys of BuildKit's exporters slipway takes, by output type (exporter/containerimage/exptypes
// keys.go, util/compression/attrs.go ParseAttributes). The layer keys are merged into the build's one
// compression (compression.ts); `name` adds tags, `registry.insecure` insecure registries, and
// `annotation*` annotations. The rest change nothing here: a daemon's image store (`store`, `unpack`,
// `dangling-name-prefix`), the deprecated buildinfo, and what slipway always does (attestations as
// OCI artifacts; with SOURCE_DATE_EPOCH every timestamp clamped: `rewrite-timestamp`).
const layerKeys = ['compression', 'compression-level', 'force-compression', 'oci-mediatypes'];
const fileNoOps = ['buildinfo', 'buildinfo-attrs', 'oci-artifact', 'rewrite-timestamp'];
const imageKeys = ['type', 'name', 'push', 'registry.insecure', ...layerKeys, 'store', 'unpack', 'dangling-name-prefix', ...fileNoOps];
const outputKeys: Record<string, string[]> = {
  image: imageKeys,
  registry: imageKeys,
  oci: ['type', 'dest', 'tar', 'name', ...layerKeys, ...fileNoOps],
  docker: ['type', 'dest', 'name', ...layerKeys, ...fileNoOps],
  cacheonly: ['type'],
};
const hints: Record<string, string> = {
  'push-by-digest': 'for one job per platform of a matrix, push tags with --merge-platforms instead (see --help)',
  'name-canonical': 'the pushed digest is in --metadata-file (containerimage.digest)',
};

/** Go's strconv.ParseBool, as BuildKit reads its exporter keys; `empty` is what a bare `key=` means. */
function parseBool(key: string, value: string, text: string, empty?: boolean): boolean {
  if (value === '' && empty !== undefined) return empty;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new UserError(`output "${text}": ${key}=${value} is not true or false`);
}

/** The layer keys of one output (compression, compression-level, force-compression, oci-mediatypes). */
function layerKeysOf(m: Map<string, string>, text: string): OutputKeys {
  const out: OutputKeys = {};
  const c = m.get('compression')?.trim().toLowerCase();
  if (c === 'estargz') {
    throw new UserError(`output "${text}": compression=estargz is not supported (slipway writes gzip, zstd or uncompressed layers)`, { hint: 'use compression=zstd for smaller layers that unpack faster, or gzip (the default) for any runtime' });
  }
  if (c !== undefined) {
    if (!(layerCompressions as readonly string[]).includes(c)) throw new UserError(`output "${text}": unsupported compression "${c}"`, { hint: `use compression=${layerCompressions.join('|')}` });
    out.compression = c as LayerCompressionType;
  }
  const level = m.get('compression-level');
  if (level !== undefined) out.compressionLevel = parseCompressionLevel(level, `output "${text}"`);
  const force = m.get('force-compression');
  if (force !== undefined) out.forceCompression = parseBool('force-compression', force, text, true);
  const oci = m.get('oci-mediatypes');
  if (oci !== undefined) out.ociMediaTypes = parseBool('oci-mediatypes', oci, text, true);
  return out;
}

/** A compression level as an integer; its range depends on the compression (compression.ts). */
export function parseCompressionLevel(text: string, where: string): number {
  if (!/^\s*-?\d+\s*$/.test(text)) throw new UserError(`${where}: compression level "${text}" is not a whole number`, { hint: 'gzip takes 0-9, zstd 1-22' });
  return Number(text);
}

/**
 * `annotation.KEY=V` and `annotation-LEVEL[PLATFORM].KEY=V` (BuildKit's exporter annotation keys,
 * exporter/containerimage/annotations.go ParseAnnotations) in --annotation's `LEVEL[PLATFORM]:KEY=V`;
 * the key keeps its case.
 */
function annotationOf(field: string): string | undefined {
  const eq = field.indexOf('=');
  const m = /^\s*annotation(?:-([A-Za-z-]+)(\[[^\]]*\])?)?\.(.+)$/.exec(field.slice(0, eq));
  if (!m) return undefined;
  return `${(m[1] ?? 'manifest').toLowerCase()}${m[2] ?? ''}:${m[3].trim()}=${field.slice(eq + 1)}`;
}

/**
 * `--output` / `outputs:` as buildx writes them: `type=oci,dest=out.tar`, `type=oci,dest=dir,tar=false`,
 * `type=docker,dest=img.tar`, `type=registry`, `type=image,push=true`, each with the exporter keys
 * above (`compression=zstd`, `name=…`, …; an unknown key is an error, never ignored), and the
 * shorthand `-` is not supported (we never stream to stdout). A bare path means `type=local` in
 * buildx, which we refuse.
 */
export function parseOutputSpec(text: string): OutputSpec {
  const spec = text.includes('=') ? text : `type=${text}`;
  const m = csvMap(spec, 'output');
  const type = m.get('type');
  const dest = m.get('dest');
  const needDest = (): string => {
    if (!dest) throw new UserError(`output "${text}" needs dest=PATH`, { hint: `for example type=${type},dest=image.tar` });
    return dest;
  };
  const known = outputKeys[type ?? ''];
  if (!known) {
    throw new UserError(`unsupported output type "${type ?? ''}" in "${text}"`, {
      hint: 'use type=registry, type=oci,dest=FILE.tar (or a directory with tar=false), or type=docker,dest=FILE.tar',
    });
  }
  const annotations: string[] = [];
  for (const field of parseCsvFields(spec)) {
    const key = field.slice(0, field.indexOf('=')).trim().toLowerCase();
    const annotation = type !== 'cacheonly' ? annotationOf(field) : undefined;
    if (annotation !== undefined) annotations.push(annotation);
    else if (!known.includes(key)) {
      throw new UserError(`output "${text}": unknown key "${key}" for type=${type}`, { hint: hints[key] ?? `type=${type} takes ${known.filter((k) => k !== 'type').join(', ')}${type !== 'cacheonly' ? ', annotation.KEY' : ''}` });
    }
  }
  const keys: OutputKeys = { ...layerKeysOf(m, text) };
  // A docker archive holds no media types (manifest.json and layer tars): oci-mediatypes is read but changes nothing.
  if (type === 'docker') delete keys.ociMediaTypes;
  const names = (m.get('name') ?? '').split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length) keys.names = names;
  const insecure = m.get('registry.insecure');
  if (insecure !== undefined && parseBool('registry.insecure', insecure, text, true)) keys.insecure = true;
  if (annotations.length) keys.annotations = annotations;
  switch (type) {
    case 'oci': {
      const tarOpt = m.get('tar');
      const tar = tarOpt === undefined ? !needDest().endsWith('/') : parseBool('tar', tarOpt, text);
      return { type: 'oci', dest: needDest(), tar, ...keys };
    }
    case 'docker':
      return { type: 'docker', dest: needDest(), ...keys };
    case 'registry':
      return { type: 'registry', ...keys };
    case 'image':
      return m.get('push') !== undefined && parseBool('push', m.get('push')!, text, true) ? { type: 'registry', ...keys } : { type: 'none', ...keys };
    default:
      return { type: 'none' };
  }
}

/**
 * `--secret id=npm,src=$HOME/.npmrc` or `id=token,env=TOKEN` (buildx's forms; `type=file|env` too).
 * Returns the id and where the value comes from; the caller reads it.
 */
export function parseSecretSpec(text: string): { id: string; src?: string; env?: string } {
  const m = csvMap(text, 'secret');
  const id = m.get('id');
  const type = m.get('type');
  const src = m.get('src') ?? m.get('source');
  let env = m.get('env');
  if (!id) throw new UserError(`secret "${text}" needs id=NAME`, { hint: 'for example id=npmrc,src=$HOME/.npmrc or id=token,env=TOKEN' });
  if (type === 'env' && !env) env = src ?? id;
  if (type === 'env') return { id, env };
  if (src) return { id, src };
  if (env) return { id, env };
  // buildx: with neither src nor env, the id names an environment variable if one exists, else a file.
  return { id, env: id, src: id };
}

/**
 * `--cache-from` / `--cache-to` as buildx writes them, for the registry type:
 * `type=registry,ref=REGISTRY/REPO:TAG[,mode=min|max]` (or the bare reference). `mode=min` (the
 * default, as buildx) exports the final image's layers, `max` every stage's. The local type is
 * `--cache-dir`.
 */
export function parseCacheRef(text: string, flag: 'cache-from' | 'cache-to'): { ref: string; mode: 'min' | 'max' } {
  if (!text.includes('=')) return { ref: text, mode: 'min' };
  const m = csvMap(text, flag);
  const type = m.get('type') ?? 'registry';
  if (type !== 'registry') {
    throw new UserError(`--${flag} type=${type} is not supported`, {
      hint: type === 'local' ? 'use --cache-dir DIR for a local cache' : type === 'gha' ? 'the GitHub Action keeps the cache in the Actions cache by itself' : 'use type=registry,ref=REGISTRY/REPO:TAG',
    });
  }
  // What buildx users pass along that changes nothing here: we always write one OCI image manifest.
  const harmless = new Set(['type', 'ref', 'mode', 'image-manifest', 'oci-mediatypes', 'compression', 'ignore-error']);
  for (const key of m.keys()) if (!harmless.has(key)) throw new UserError(`--${flag} "${text}": unknown option ${key}`, { hint: 'use type=registry,ref=REGISTRY/REPO:TAG[,mode=min|max]' });
  const ref = m.get('ref');
  if (!ref) throw new UserError(`--${flag} "${text}" needs ref=REGISTRY/REPO:TAG`);
  const mode = m.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new UserError(`--${flag} "${text}": mode must be min or max`);
  return { ref, mode };
}
