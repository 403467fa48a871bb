// What to attach to a published image, in buildx's syntax: `--annotation [LEVELS:]KEY=VALUE` and
// `--attest type=provenance,mode=min|max` / `--attest type=sbom` (with `--provenance` and `--sbom`
// as their shorthands).
import { UserError } from '../errors.ts';
import { parsePlatform, type Platform } from '../oci/index.ts';
import { parseCsvFields } from './parse.ts';

import { annotationLevels, type Annotation, type AnnotationLevel, type AttestRequest } from './types.ts';

// The keys the OCI image spec predefines in its reserved `org.opencontainers.image.` namespace.
const ociKeys = new Set(['created', 'authors', 'url', 'documentation', 'source', 'version', 'revision', 'vendor', 'licenses', 'ref.name', 'title', 'description', 'base.digest', 'base.name']);
const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * One `--annotation` value as buildx reads it: `KEY=VALUE` (the manifest level, buildx's default),
 * or `LEVEL[,LEVEL…]:KEY=VALUE` where a level may name a platform, `manifest[linux/arm64]:`.
 */
export function parseAnnotation(text: string): Annotation[] {
  const eq = text.indexOf('=');
  const hint = 'for example manifest:org.opencontainers.image.title=app or index,manifest:org.opencontainers.image.version=1.0';
  if (eq <= 0) throw new UserError(`invalid annotation "${text}": expected [LEVEL:]KEY=VALUE`, { hint });
  const head = text.slice(0, eq);
  const value = text.slice(eq + 1);
  // A platform in brackets holds slashes but no colon; the key holds neither a colon nor a bracket.
  const colon = head.lastIndexOf(':');
  const key = head.slice(colon + 1).trim();
  const levelsText = colon < 0 ? 'manifest' : head.slice(0, colon);
  if (key === '' || /[\s[\]]/.test(key)) throw new UserError(`invalid annotation "${text}": "${key}" is not an annotation key`, { hint });
  checkOciRules(key, value, text);
  return levelsText.split(',').map((raw) => {
    const m = /^\s*([a-z-]+)\s*(?:\[([^\]]*)\])?\s*$/.exec(raw);
    const level = m?.[1] as AnnotationLevel | undefined;
    if (!m || !annotationLevels.includes(level!)) {
      throw new UserError(`invalid annotation "${text}": unknown level "${raw.trim()}"`, { hint: `levels are ${annotationLevels.join(', ')}; a platform goes in brackets, e.g. manifest[linux/amd64]` });
    }
    let platform: Platform | undefined;
    if (m[2] !== undefined) {
      try { platform = parsePlatform(m[2]); } catch (e) { throw new UserError(`invalid annotation "${text}": ${(e as Error).message}`); }
    }
    return { level: level!, ...(platform ? { platform } : {}), key, value };
  });
}

function checkOciRules(key: string, value: string, text: string): void {
  const prefix = 'org.opencontainers.image.';
  if (!key.startsWith(prefix)) return;
  if (!ociKeys.has(key.slice(prefix.length))) {
    throw new UserError(`invalid annotation "${text}": ${key} is not one of the OCI image spec's predefined keys`, {
      hint: `the org.opencontainers.image. namespace is reserved; use ${[...ociKeys].map((k) => prefix + k).slice(0, 3).join(', ')}, … or a key of your own namespace`,
    });
  }
  if (key === `${prefix}created` && !rfc3339.test(value)) {
    throw new UserError(`invalid annotation "${text}": ${key} must be an RFC 3339 date-time, e.g. 2024-01-31T12:00:00Z`);
  }
}

function attestMap(text: string, flag: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const field of parseCsvFields(text)) {
    const f = field.trim();
    if (f === '') continue;
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid ${flag} "${text}": field "${f}" is not key=value`);
    m.set(f.slice(0, eq).toLowerCase(), f.slice(eq + 1));
  }
  return m;
}

function truthy(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  return undefined;
}

function provenanceMode(m: Map<string, string>, text: string, flag: string): { mode: 'min' | 'max' } | undefined {
  if (m.has('disabled') && truthy(m.get('disabled')!)) return undefined;
  const mode = (m.get('mode') ?? 'min').toLowerCase();
  if (mode !== 'min' && mode !== 'max') throw new UserError(`invalid ${flag} "${text}": mode must be min or max`);
  const known = new Set(['type', 'mode', 'disabled', 'version', 'builder-id', 'inline-only', 'reproducible']);
  for (const k of m.keys()) if (!known.has(k)) throw new UserError(`invalid ${flag} "${text}": unknown option ${k}`, { hint: 'use mode=min or mode=max' });
  return { mode };
}

/**
 * `--provenance VALUE` (buildx's shorthand: `true`, `false`, `mode=max`, `disabled=true`, …).
 * Returns undefined for "off" and null when the value says nothing (an empty string).
 */
export function parseProvenanceFlag(text: string): { mode: 'min' | 'max' } | undefined | null {
  const t = text.trim();
  if (t === '') return null;
  const b = truthy(t);
  if (b !== undefined) return b ? { mode: 'min' } : undefined;
  return provenanceMode(attestMap(t, '--provenance'), t, '--provenance');
}

/** `--sbom VALUE`: `true`, `false`, or `generator=…`-style options (any options mean on). */
export function parseSbomFlag(text: string): boolean | null {
  const t = text.trim();
  if (t === '') return null;
  const b = truthy(t);
  if (b !== undefined) return b;
  const m = attestMap(t, '--sbom');
  return !(m.has('disabled') && truthy(m.get('disabled')!));
}

/** Folds `--attest` values into `into`: `type=provenance[,mode=…]`, `type=sbom`. */
export function applyAttest(text: string, into: AttestRequest): void {
  const m = attestMap(text, '--attest');
  const type = m.get('type');
  if (type === 'provenance') into.provenance = provenanceMode(m, text, '--attest');
  else if (type === 'sbom') into.sbom = !(m.has('disabled') && truthy(m.get('disabled')!));
  else throw new UserError(`invalid --attest "${text}": type must be provenance or sbom`, { hint: 'for example --attest type=provenance,mode=max or --attest type=sbom' });
}
