// OCI 1.1 referrers: pushing a manifest that has a `subject` so that it can be found again. A
// registry with the referrers API says so by answering the PUT with an `OCI-Subject` header; without
// it, the client keeps the referrers tag schema itself (distribution spec, "Pushing Manifests with
// Subject"): fetch the index tagged `<alg>-<ref>`, or start an empty one, add the descriptor when it
// is not listed yet, and push the index under that tag again — with If-Match where the registry
// gave an ETag, so a concurrent writer is noticed and the update retried.
import { UserError } from '../errors.ts';
import { MediaType, jsonBytes, sha256, type Descriptor, type Index } from '../oci/index.ts';
import type { RegistryClient } from './client.ts';
import { withTarget, type Reference } from './reference.ts';
import { responseHeader } from './transport.ts';

export type ReferrerStore = 'referrers-api' | 'tag-schema';

/** `sha256:abc…` → `sha256-abc…` (alg up to 32 chars, ref up to 64, other characters as `-`). */
export function referrersTag(digest: string): string {
  const colon = digest.indexOf(':');
  const clean = (s: string) => s.replace(/[^a-zA-Z0-9._-]/g, '-');
  return `${clean(digest.slice(0, colon)).slice(0, 32)}-${clean(digest.slice(colon + 1)).slice(0, 64)}`;
}

function scopeOf(ref: Reference): string[] {
  return [`repository:${ref.repository}:pull,push`];
}

/**
 * PUTs `bytes` (a manifest whose `subject` is `subject`) by digest into `repo`'s repository, then
 * makes sure the referrers list names it. `desc` is the descriptor a referrers list holds for it
 * (mediaType, digest, size, artifactType, annotations). Returns which mechanism lists it.
 */
export async function pushReferrer(client: RegistryClient, repo: Reference, bytes: Buffer, desc: Descriptor, subject: string): Promise<ReferrerStore> {
  if (sha256(bytes) !== desc.digest) throw new Error(`referrer descriptor ${desc.digest} does not match its bytes`);
  const res = await client.transport.send({
    registry: repo.registry, method: 'PUT', path: `/v2/${repo.repository}/manifests/${desc.digest}`, scopes: scopeOf(repo),
    headers: { 'content-type': desc.mediaType }, body: bytes, accept: [201, 202, 204],
  });
  await res.body.dump();
  if (responseHeader(res, 'oci-subject')) return 'referrers-api';
  for (let attempt = 0; ; attempt++) {
    if (await addToTagIndex(client, repo, desc, subject)) return 'tag-schema';
    if (attempt >= 4) throw new UserError(`the referrers index ${referrersTag(subject)} in ${repo.registry}/${repo.repository} kept changing while it was updated`, { hint: 'another build is writing referrers of the same image; run again' });
  }
}

/** One read-modify-write of the tag-schema index; false when a concurrent writer won (412). */
async function addToTagIndex(client: RegistryClient, repo: Reference, desc: Descriptor, subject: string): Promise<boolean> {
  const tag = referrersTag(subject);
  const got = await client.transport.send({
    registry: repo.registry, method: 'GET', path: `/v2/${repo.repository}/manifests/${tag}`, scopes: scopeOf(repo),
    headers: { accept: MediaType.ociIndex }, accept: [200, 404],
  });
  let index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  let etag: string | undefined;
  if (got.status === 200) {
    const text = await got.body.text();
    etag = responseHeader(got, 'etag');
    try {
      const parsed = JSON.parse(text) as Index;
      if (parsed.mediaType !== MediaType.ociIndex || !Array.isArray(parsed.manifests)) throw new Error('not an OCI index');
      index = parsed;
    } catch (e) {
      throw new UserError(`tag ${tag} in ${repo.registry}/${repo.repository} is not a referrers index (${(e as Error).message})`, { hint: 'the tag is reserved for the referrers tag schema; delete it and push again' });
    }
  } else {
    await got.body.dump();
  }
  if (index.manifests.some((m) => m.digest === desc.digest)) return true;
  index.manifests = [...index.manifests, desc];
  const bytes = jsonBytes(index);
  const put = await client.transport.send({
    registry: repo.registry, method: 'PUT', path: `/v2/${repo.repository}/manifests/${tag}`, scopes: scopeOf(repo),
    headers: { 'content-type': MediaType.ociIndex, ...(etag ? { 'if-match': etag } : {}) }, body: bytes, accept: [201, 202, 204, 412],
  });
  await put.body.dump();
  return put.status !== 412;
}

/**
 * The referrers of `subject`: the API's list when the registry has the API, else the tag schema's
 * index; `artifactType` filters. Empty when neither lists anything.
 */
export async function listReferrers(client: RegistryClient, repo: Reference, subject: string, artifactType?: string): Promise<Descriptor[]> {
  const api = await client.transport.send({
    registry: repo.registry, method: 'GET', path: `/v2/${repo.repository}/referrers/${subject}`, scopes: [`repository:${repo.repository}:pull`],
    headers: { accept: MediaType.ociIndex }, accept: [200, 404, 400, 405],
  });
  let manifests: Descriptor[];
  if (api.status === 200 && (responseHeader(api, 'content-type') ?? '').startsWith(MediaType.ociIndex)) {
    manifests = ((await api.body.json()) as Index).manifests ?? [];
  } else {
    await api.body.dump();
    const tagged = withTarget(repo, { tag: referrersTag(subject) });
    if ((await client.headManifest(tagged)) === undefined) return [];
    manifests = (JSON.parse((await client.getManifest(tagged)).bytes.toString('utf8')) as Index).manifests ?? [];
  }
  return artifactType ? manifests.filter((m) => m.artifactType === artifactType) : manifests;
}
