// Image references parsed and normalised as distribution/reference (ParseNormalizedNamed) does:
// `busybox` → docker.io/library/busybox:latest, `localhost:5000/x`, `name:tag@sha256:…`.
import { UserError } from '../errors.ts';

export interface Reference {
  /** Registry host as written (`docker.io`, `ghcr.io`, `127.0.0.1:5000`, `localhost`). */
  registry: string;
  /** Repository path inside the registry (`library/busybox`). */
  repository: string;
  tag?: string;
  digest?: string;
  /** Full normalised form: `docker.io/library/busybox:latest`. */
  toString(): string;
}

const nameMaxLength = 255;
const alnum = '[a-z0-9]+';
const separator = '(?:[._]|__|[-]+)';
const pathComponent = `${alnum}(?:${separator}${alnum})*`;
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const ipv6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const domain = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})(?::[0-9]+)?`;
const tagPattern = '[\\w][\\w.-]{0,127}';
const digestPattern = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const referenceRegexp = new RegExp(`^((?:${domain}/)?${pathComponent}(?:/${pathComponent})*)(?::(${tagPattern}))?(?:@(${digestPattern}))?$`);
const anchoredHex64 = /^[a-f0-9]{64}$/;
const digestLengths: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export const dockerHubDomain = 'docker.io';

function invalid(input: string, why: string): UserError {
  return new UserError(`invalid image reference "${input}": ${why}`, {
    hint: 'write [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST] with a lowercase NAME, for example ghcr.io/owner/app:1.0 or busybox',
  });
}

function make(registry: string, repository: string, tag?: string, digest?: string): Reference {
  return {
    registry, repository, tag, digest,
    toString() {
      return `${registry}/${repository}${tag ? ':' + tag : ''}${digest ? '@' + digest : ''}`;
    },
  };
}

function splitDomain(name: string): [string, string] {
  const i = name.indexOf('/');
  let host: string;
  let rest: string;
  const first = name.slice(0, i);
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    host = dockerHubDomain;
    rest = name;
  } else {
    host = first;
    rest = name.slice(i + 1);
  }
  if (host === 'index.docker.io') host = dockerHubDomain;
  if (host === dockerHubDomain && !rest.includes('/')) rest = 'library/' + rest;
  return [host, rest];
}

/**
 * Parses a user-written image reference. A reference with neither tag nor digest gets `latest`
 * unless `defaultTag` is false. Throws a UserError naming what is wrong.
 */
export function parseReference(input: string, opts: { defaultTag?: boolean } = {}): Reference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');
  if (anchoredHex64.test(s)) throw invalid(input, 'a 64-character hexadecimal string is an image ID, not a repository name');
  // Split off tag and digest first so the name can be normalised on its own.
  const at = s.indexOf('@');
  const namePart = at >= 0 ? s.slice(0, at) : s;
  const digestPart = at >= 0 ? s.slice(at + 1) : undefined;
  const lastColon = namePart.lastIndexOf(':');
  const lastSlash = namePart.lastIndexOf('/');
  const name = lastColon > lastSlash ? namePart.slice(0, lastColon) : namePart;
  const tagPart = lastColon > lastSlash ? namePart.slice(lastColon + 1) : undefined;
  if (name === '') throw invalid(input, 'the repository name is empty');
  const [host, rest] = splitDomain(name);
  if (rest.toLowerCase() !== rest) throw invalid(input, 'the repository name must be lowercase');
  const full = `${host}/${rest}${tagPart !== undefined ? ':' + tagPart : ''}${digestPart !== undefined ? '@' + digestPart : ''}`;
  const m = referenceRegexp.exec(full);
  if (!m) {
    if (tagPart !== undefined && !new RegExp(`^${tagPattern}$`).test(tagPart)) throw invalid(input, `the tag "${tagPart}" is not valid (letters, digits, _ . -; at most 128; not starting with . or -)`);
    if (digestPart !== undefined && !new RegExp(`^${digestPattern}$`).test(digestPart)) throw invalid(input, `the digest "${digestPart}" is not valid (expected sha256:<64 hex>)`);
    throw invalid(input, 'the name has characters or separators a repository name cannot have');
  }
  if (m[1].length > nameMaxLength) throw invalid(input, `the name is longer than ${nameMaxLength} characters`);
  if (digestPart !== undefined) {
    const [alg, hex] = digestPart.split(':');
    if (digestLengths[alg] === undefined) throw invalid(input, `unsupported digest algorithm "${alg}" (use sha256, sha384 or sha512)`);
    if (hex.length !== digestLengths[alg] || !/^[a-f0-9]+$/.test(hex)) throw invalid(input, `the ${alg} digest must be ${digestLengths[alg]} lowercase hex characters`);
  }
  const tag = tagPart ?? (digestPart === undefined && opts.defaultTag !== false ? 'latest' : undefined);
  return make(host, rest, tag, digestPart);
}

/** The short form Docker prints: `busybox:latest`, `owner/app:1`, `ghcr.io/o/a@sha256:…`. */
export function familiarName(ref: Reference): string {
  let name = `${ref.registry}/${ref.repository}`;
  if (ref.registry === dockerHubDomain) name = ref.repository.startsWith('library/') && ref.repository.split('/').length === 2 ? ref.repository.slice(8) : ref.repository;
  return `${name}${ref.tag ? ':' + ref.tag : ''}${ref.digest ? '@' + ref.digest : ''}`;
}

/** The same repository, pointing at another tag or digest. */
export function withTarget(ref: Reference, target: { tag?: string; digest?: string }): Reference {
  return make(ref.registry, ref.repository, target.tag, target.digest);
}

/** `tag` or `digest` to put in a /manifests/ URL (digest wins, as a pinned reference). */
export function manifestTarget(ref: Reference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}
