// Image names as the output formats want them: the full name for containerd's annotation, the tag for
// the OCI ref.name, Docker's short "familiar" form (app:1.0) for docker-archive RepoTags.
import { UserError } from '../errors.ts';

export interface TagName {
  /** e.g. docker.io/library/app */
  repository: string;
  tag: string;
}

/** Parses `[registry/]path[:tag]` (no digest), filling in docker.io, library/ and latest like Docker. */
export function parseTagName(name: string): TagName {
  if (name.includes('@')) throw new UserError(`cannot tag an output as "${name}": a digest reference is not a tag`, { hint: 'use name:tag' });
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  let repo = name;
  let tag = 'latest';
  if (colon > slash) {
    repo = name.slice(0, colon);
    tag = name.slice(colon + 1);
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag) || !/^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/.test(repo.slice(domainLength(repo)))) {
    throw new UserError(`invalid image name "${name}"`, { hint: 'use [registry/]repository[:tag] in lower case, for example ghcr.io/org/app:1.0' });
  }
  const first = repo.split('/')[0];
  const hasDomain = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) repo = 'docker.io/' + (repo.includes('/') ? repo : 'library/' + repo);
  return { repository: repo, tag };
}

function domainLength(repo: string): number {
  const first = repo.split('/')[0];
  if (repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) return first.length + 1;
  return 0;
}

export function fullName(t: TagName): string {
  return `${t.repository}:${t.tag}`;
}

/** Docker's familiar form: docker.io/library/app → app, docker.io/org/app → org/app. */
export function familiarRepository(t: TagName): string {
  if (t.repository.startsWith('docker.io/library/')) return t.repository.slice('docker.io/library/'.length);
  if (t.repository.startsWith('docker.io/')) return t.repository.slice('docker.io/'.length);
  return t.repository;
}
