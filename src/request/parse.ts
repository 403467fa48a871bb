// Parsers for the small textual formats buildx and build-push-action accept.
import { UserError } from '../errors.ts';
import type { OutputSpec } from './types.ts';

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

/**
 * `--output` / `outputs:` as buildx writes them: `type=oci,dest=out.tar`, `type=oci,dest=dir,tar=false`,
 * `type=docker,dest=img.tar`, `type=registry`, `type=image,push=true`, and the shorthand `-` is not
 * supported (we never stream to stdout). A bare path means `type=local` in buildx, which we refuse.
 */
export function parseOutputSpec(text: string): OutputSpec {
  const m = csvMap(text.includes('=') ? text : `type=${text}`, 'output');
  const type = m.get('type');
  const dest = m.get('dest');
  const needDest = (): string => {
    if (!dest) throw new UserError(`output "${text}" needs dest=PATH`, { hint: `for example type=${type},dest=image.tar` });
    return dest;
  };
  switch (type) {
    case 'oci': {
      const tarOpt = m.get('tar');
      const tar = tarOpt === undefined ? !needDest().endsWith('/') : tarOpt === 'true';
      return { type: 'oci', dest: needDest(), tar };
    }
    case 'docker':
      return { type: 'docker', dest: needDest() };
    case 'registry':
      return { type: 'registry' };
    case 'image':
      return m.get('push') === 'true' ? { type: 'registry' } : { type: 'none' };
    case 'cacheonly':
      return { type: 'none' };
    default:
      throw new UserError(`unsupported output type "${type ?? ''}" in "${text}"`, {
        hint: 'use type=registry, type=oci,dest=FILE.tar (or a directory with tar=false), or type=docker,dest=FILE.tar',
      });
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
