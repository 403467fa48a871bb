// `--build-context NAME=VALUE` (action input `build-contexts`) as buildx reads it: the name is an
// image-name-like word, normalised as buildx and BuildKit's dockerui do (`docker.io/library/a:latest`
// and `a` are one name); the value is a local directory, `docker-image://REF`,
// `oci-layout://DIR[:TAG|@DIGEST]` (the tag resolved to a digest here, as buildx does before the
// build), or a git or http(s) URL. Every error is found here, before any step runs.
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { parseReference, type Reference } from '../registry/index.ts';
import type { NamedContext, NamedContextSource } from './types.ts';

/** Docker's short form of a reference: `busybox:1`, `owner/app`, `ghcr.io/o/a@sha256:…`. */
function familiar(r: Reference): string {
  const hub = r.registry === 'docker.io';
  const path = hub && /^library\/[^/]+$/.test(r.repository) ? r.repository.slice(8) : r.repository;
  return `${hub ? '' : r.registry + '/'}${path}${r.tag ? ':' + r.tag : ''}${r.digest ? '@' + r.digest : ''}`;
}

/** A name as BuildKit matches it: the familiar form without `:latest`; undefined when it is no image name. */
export function contextName(name: string): string | undefined {
  try {
    return familiar(parseReference(name, { defaultTag: false })).replace(/:latest$/, '');
  } catch {
    return undefined;
  }
}

/** The planner's lookup: whether a Dockerfile word names one of `contexts` (undefined: there are none). */
export function contextLookup(contexts: readonly NamedContext[]): ((word: string) => boolean) | undefined {
  if (contexts.length === 0) return undefined;
  const names = new Set(contexts.map((c) => c.name));
  return (word) => !/^(scratch|context)$/i.test(word) && names.has(contextName(word) ?? '');
}

const isGitUrl = (v: string) => /^git@[^:]+:/.test(v) || /^(git|ssh):\/\//.test(v) || /^https?:\/\/[^#?]+\.git([?#].*)?$/.test(v);

/** An OCI layout's index entry for `tag` (its ref.name annotation), or its one entry when no tag was given. */
function layoutDigest(dir: string, tag: string | undefined, what: string): string {
  let index: { manifests?: Array<{ digest?: string; annotations?: Record<string, string> }> };
  try {
    index = JSON.parse(readFileSync(resolve(dir, 'index.json'), 'utf8')) as typeof index;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR';
    throw new UserError(`${what}: ${dir} is no OCI image layout (${missing ? 'it has no index.json' : 'its index.json is not valid JSON'})`, { hint: 'give a directory written as an OCI layout, e.g. by skopeo copy … oci:DIR:TAG or --output type=oci,dest=DIR,tar=false' });
  }
  const entries = index.manifests ?? [];
  const tags = entries.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((t): t is string => Boolean(t));
  const byTag = entries.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === (tag ?? 'latest'));
  const found = byTag ?? (tag === undefined && entries.length === 1 ? entries[0] : undefined);
  if (!found?.digest) {
    throw new UserError(`${what}: the OCI layout ${dir} has no image tagged "${tag ?? 'latest'}"`, { hint: tags.length ? `its tags: ${tags.join(', ')} (write oci-layout://DIR:TAG)` : 'it names no tags: give oci-layout://DIR@sha256:… of one of its manifests' });
  }
  return found.digest;
}

function sourceOf(value: string, what: string, cwd: string): NamedContextSource {
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    try { parseReference(ref); } catch (e) {
      throw new UserError(`${what}: ${(e as Error).message}`, { hint: 'write docker-image://REF, e.g. docker-image://alpine:3.20' });
    }
    return { kind: 'image', ref };
  }
  if (value.startsWith('oci-layout://')) {
    const spec = value.slice('oci-layout://'.length);
    const at = spec.indexOf('@');
    const pathAndTag = at < 0 ? spec : spec.slice(0, at);
    const colon = pathAndTag.lastIndexOf(':');
    const dirPart = colon < 0 ? pathAndTag : pathAndTag.slice(0, colon);
    const tag = colon < 0 ? undefined : pathAndTag.slice(colon + 1);
    if (dirPart === '') throw new UserError(`${what}: oci-layout:// names no directory`, { hint: 'write oci-layout://DIR, oci-layout://DIR:TAG or oci-layout://DIR@sha256:…' });
    if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) throw new UserError(`${what}: "${tag}" is not a valid tag`, { hint: 'a tag is letters, digits, _ . - (at most 128, not starting with . or -)' });
    const dir = resolve(cwd, dirPart);
    if (at >= 0) {
      const digest = spec.slice(at + 1);
      if (!/^sha256:[a-f0-9]{64}$/.test(digest)) throw new UserError(`${what}: "${digest}" is not a sha256 digest`, { hint: 'write oci-layout://DIR@sha256:<64 hex digits>' });
      try { statSync(resolve(dir, 'blobs', 'sha256', digest.slice(7))); } catch {
        throw new UserError(`${what}: the OCI layout ${dir} has no blob ${digest}`, { hint: 'check the directory and the digest (its index.json lists the images it holds)' });
      }
      return { kind: 'oci-layout', dir, digest };
    }
    return { kind: 'oci-layout', dir, digest: layoutDigest(dir, tag, what), ...(tag !== undefined ? { tag } : {}) };
  }
  if (isGitUrl(value)) return { kind: 'git', url: value };
  if (/^https?:\/\//i.test(value)) return { kind: 'http', url: value };
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  if (scheme) {
    throw new UserError(`${what}: unknown scheme "${scheme[1]}://"`, { hint: 'give a directory, docker-image://REF, oci-layout://DIR[:TAG|@DIGEST], a git URL or an http(s) URL' });
  }
  const dir = resolve(cwd, value);
  let st;
  try { st = statSync(dir); } catch {
    throw new UserError(`${what}: directory ${dir} does not exist`, { hint: 'give an existing directory (relative to the working directory), or docker-image://REF for an image' });
  }
  if (!st.isDirectory()) throw new UserError(`${what}: ${dir} is not a directory`, { hint: 'a named context is a directory, not a file' });
  return { kind: 'local', dir };
}

/** Parses every `NAME=VALUE`; a later value for the same name wins, as buildx's map does. */
export function parseBuildContexts(values: string[], cwd: string): NamedContext[] {
  const out = new Map<string, NamedContext>();
  for (const text of values) {
    if (text === '') continue;
    const eq = text.indexOf('=');
    if (eq < 0) throw new UserError(`invalid build context "${text}": expected NAME=VALUE`, { hint: 'for example --build-context base=docker-image://alpine:3.20 or --build-context src=../src' });
    const raw = text.slice(0, eq);
    const name = contextName(raw);
    if (name === undefined) throw new UserError(`invalid build context name "${raw}"`, { hint: 'a name is a stage or image name: lowercase letters, digits, . _ - and /' });
    const value = text.slice(eq + 1);
    out.set(name, { name, value, source: sourceOf(value, `--build-context ${raw}=${value}`, cwd) });
  }
  return [...out.values()];
}
