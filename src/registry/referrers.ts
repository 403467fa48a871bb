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
 * PUTs each artifact (a manifest whose `subject` is `subject`) by digest into `repo`'s repository,
 * all at once, then makes sure the referrers list names them — one read-modify-write of the tag
 * schema index for the lot, not one per artifact. `desc` is the descriptor a referrers list holds
 * (mediaType, digest, size, artifactType, annotations). Returns which mechanism lists them.
 */
export async function pushReferrers(client: RegistryClient, repo: Reference, artifacts: Array<{ bytes: Buffer; desc: Descriptor }>, subject: string, listing?: ReferrersListing): Promise<ReferrerStore> {
  for (const a of artifacts) if (sha256(a.bytes) !== a.desc.digest) throw new Error(`referrer descriptor ${a.desc.digest} does not match its bytes`);
  // The tag schema's index is read while the manifests go up (or was, before the push: `listing`):
  // one round trip less when the registry turns out to have no referrers API (and one wasted GET
  // when it has).
  const first = listing ? Promise.resolve(listing.state) : readTagIndex(client, repo, subject);
  first.catch(() => undefined);
  const listed = await Promise.all(artifacts.map(async ({ bytes, desc }) => {
    const res = await client.transport.send({
      registry: repo.registry, method: 'PUT', path: `/v2/${repo.repository}/manifests/${desc.digest}`, scopes: scopeOf(repo),
      headers: { 'content-type': desc.mediaType }, body: bytes, accept: [201, 202, 204],
    });
    await res.body.dump();
    return responseHeader(res, 'oci-subject') !== undefined;
  }));
  if (listed.every(Boolean)) return 'referrers-api';
  const descs = artifacts.map((a) => a.desc);
  if (await addToTagIndex(client, repo, await first, descs)) return 'tag-schema';
  for (let attempt = 0; ; attempt++) {
    if (await addToTagIndex(client, repo, await readTagIndex(client, repo, subject), descs)) return 'tag-schema';
    if (attempt >= 3) throw new UserError(`the referrers index ${referrersTag(subject)} in ${repo.registry}/${repo.repository} kept changing while it was updated`, { hint: 'another build is writing referrers of the same image; run again' });
  }
}

interface TagIndex { tag: string; index: Index; etag?: string }

/** What the referrers tag schema lists for a subject, read before a push; pushReferrers updates from it. */
export interface ReferrersListing { digests: string[]; state: TagIndex }

/**
 * The referrers tag schema index of `subject` before a push: an artifact it lists is there, with
 * its blobs, so it need not be pushed again. Empty where nothing is listed (or the registry keeps
 * referrers behind its API instead).
 */
export async function readReferrersListing(client: RegistryClient, repo: Reference, subject: string): Promise<ReferrersListing> {
  const state = await readTagIndex(client, repo, subject);
  return { digests: state.index.manifests.map((m) => m.digest), state };
}

/** The referrers tag schema index of `subject` as it is now (an empty one when there is none). */
async function readTagIndex(client: RegistryClient, repo: Reference, subject: string): Promise<TagIndex> {
  const tag = referrersTag(subject);
  const got = await client.transport.send({
    registry: repo.registry, method: 'GET', path: `/v2/${repo.repository}/manifests/${tag}`, scopes: scopeOf(repo),
    headers: { accept: MediaType.ociIndex }, accept: [200, 404],
  });
  if (got.status !== 200) {
    await got.body.dump();
    return { tag, index: { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] } };
  }
  const text = await got.body.text();
  try {
    const parsed = JSON.parse(text) as Index;
    if (parsed.mediaType !== MediaType.ociIndex || !Array.isArray(parsed.manifests)) throw new Error('not an OCI index');
    return { tag, index: parsed, etag: responseHeader(got, 'etag') };
  } catch (e) {
    throw new UserError(`tag ${tag} in ${repo.registry}/${repo.repository} is not a referrers index (${(e as Error).message})`, { hint: 'the tag is reserved for the referrers tag schema; delete it and push again' });
  }
}

/** Writes `current` plus whichever of `descs` it lacks; false when a concurrent writer won (412). */
async function addToTagIndex(client: RegistryClient, repo: Reference, current: TagIndex, descs: Descriptor[]): Promise<boolean> {
  const { tag, index, etag } = current;
  const missing = descs.filter((d) => !index.manifests.some((m) => m.digest === d.digest));
  if (missing.length === 0) return true;
  const bytes = jsonBytes({ ...index, manifests: [...index.manifests, ...missing] });
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
