// Where built images go: file outputs (OCI layout, docker archive) and pushes — every blob and
// per-platform manifest (by digest) first, tags and the index last, so a failure never leaves a
// tag pointing at missing content.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { boundedAll } from '../limit.ts';
import { formatPlatform, isIndexMediaType, platformMatches, type Descriptor, type Platform } from '../oci/index.ts';
import { loadArchive, writeDockerArchive, writeOciLayout, type BlobBytes, type ImageLoader } from '../output/index.ts';
import { parseReference, recordAndMerge, RegistryAnswerError, type MergeStore } from '../registry/index.ts';
import { annotationsAt } from './annotations.ts';
import type { Assembled } from './assemble.ts';
import { startAttestations, type MadeAttestations } from './attestations.ts';
import type { LayerRef } from './layers.ts';
import type { RegistryPort, UploadReservation } from './ports.ts';
import type { BuildSession, TagProbes } from './session.ts';
import type { LayerStaging } from './staging.ts';
import type { BuildRequest } from '../request/index.ts';

/** What was written, pushed and loaded. */
export interface Published {
  written: string[];
  pushed: string[];
  /** Image names (or the id) the local image store now has, from `docker load`. */
  loaded: string[];
  /** How the registry lists the attestations: `referrers-api` and/or `tag-schema`. */
  referrers: string[];
  /** With request.merge: the index this job wrote over every platform of the set, if it saw them all. */
  merged?: BlobBytes;
}

export interface PublishExtras {
  attestations?: MadeAttestations;
  loader?: ImageLoader;
  /** Uploads started as the build began, per repository, for the provenance statements. */
  reserved?: Map<string, UploadReservation[]>;
}

/**
 * With provenance to push, one upload per platform and repository starts as the build begins:
 * the statement is made as the build ends, and its upload is then one round trip, not two.
 */
export function reserveProvenanceUploads(request: BuildRequest, registry: RegistryPort | undefined, platforms: number): Map<string, UploadReservation[]> {
  const reserved = new Map<string, UploadReservation[]>();
  if (!registry?.reserveUpload || !request.attest?.provenance || !request.outputs.some((o) => o.type === 'registry')) return reserved;
  for (const repo of new Set(request.tags.map(repositoryOf))) reserved.set(repo, Array.from({ length: platforms }, () => registry.reserveUpload!(repo)));
  return reserved;
}

export async function publish(session: BuildSession, images: Assembled[], index: BlobBytes | undefined, registry: RegistryPort | undefined, extras: PublishExtras = {}): Promise<Published> {
  const { request } = session;
  const out: Published = { written: [], pushed: [], loaded: [], referrers: [] };
  const files = request.outputs.filter((o) => o.type === 'oci' || o.type === 'docker');
  if (files.length || extras.loader) {
    // File outputs hold every blob, so base layers still in their registry are fetched now.
    for (const img of images) {
      for (let i = 0; i < img.layers.length; i++) img.layers[i].path = await session.layers.local(img.state.layers[i]);
    }
    for (const o of files) {
      const built = { images, index, tags: request.tags, descriptorAnnotations: annotationsAt(request, 'index-descriptor') };
      out.written.push(await reported(session, `exporting to ${o.type === 'oci' ? 'an OCI layout' : 'a docker archive'} ${o.dest}`, async () => (o.type === 'oci'
        ? await writeOciLayout({ ...built, dest: o.dest, tar: o.tar, sourceDateEpoch: request.sourceDateEpoch })
        : await writeDockerArchive({ ...built, dest: o.dest, sourceDateEpoch: request.sourceDateEpoch })).dest));
    }
  }
  if (extras.loader) {
    const loader = extras.loader;
    const file = join(session.workRoot, 'load.tar');
    const loaded = await reported(session, `loading into ${loader.command} (${loader.version})`, async () => {
      await writeDockerArchive({ images, tags: request.tags, dest: file, sourceDateEpoch: request.sourceDateEpoch });
      return loadArchive(loader, file);
    });
    out.loaded = loaded.split('\n').map((l) => l.replace(/^Loaded image( ID)?: /, '').trim()).filter(Boolean);
  }
  if (request.outputs.some((o) => o.type === 'registry')) {
    if (!registry) throw new Error('pushing needs registry access');
    const pushed = await reported(session, `pushing ${request.tags.join(', ')}`, () => push(session, registry, images, index, extras));
    out.pushed = pushed.refs;
    out.referrers = [...pushed.referrers].sort();
    if (request.merge) out.merged = await mergeJobs(session, registry, images, pushed.refs);
  }
  return out;
}

async function reported<T>(session: BuildSession, title: string, work: () => Promise<T>): Promise<T> {
  const reporter = session.progress.step(title);
  try {
    const value = await work();
    reporter.done();
    return value;
  } catch (e) {
    reporter.failed(e);
    throw e;
  }
}

function archTag(tag: string, p: Platform): string {
  return `${tag}-${p.architecture}${p.variant ?? ''}`;
}

/**
 * An early answer that a tag already names the image is trusted for this long; an older one is
 * asked again at the push, as a tag may move while a long build runs. (An answer that it names
 * something else or nothing needs no second look: the tag is written either way.)
 */
const PROBE_FRESH_MS = 5_000;

/**
 * The tags a push writes: the request's, which get the index or the image (none in a merge: there
 * they get the index over every job's platforms, mergeJobs), and with --per-arch-tags one per tag
 * and platform, which gets the manifest of the platform at `platform` in `platforms`.
 */
function tagsWritten(request: BuildRequest, platforms: Platform[]): { tags: string[]; archTags: Array<{ tag: string; platform: number }>; all: string[] } {
  const tags = request.merge ? [] : request.tags;
  const archTags = request.perArchTags ? request.tags.flatMap((tag) => platforms.map((p, platform) => ({ tag: archTag(tag, p), platform }))) : [];
  return { tags, archTags, all: [...tags, ...archTags.map((a) => a.tag)] };
}

/**
 * What each tag the push will write names now, asked as the build starts (build() calls it when
 * pushing), beside the base images' HEADs: a fully cached build's push then waits on no HEAD.
 */
export function probeTags(registry: RegistryPort, request: BuildRequest, platforms: Platform[]): TagProbes {
  const answer = (digest: string | undefined) => ({ digest, at: Date.now() });
  return new Map(tagsWritten(request, platforms).all.map((tag) => [tag, registry.headTarget(tag).then(answer, () => answer(undefined))]));
}

/** What `tag` names: its early answer where that is one to go by, else a HEAD now (undefined on failure). */
async function currentTarget(registry: RegistryPort, tag: string, early: TagProbes | undefined): Promise<string | undefined> {
  const probe = await early?.get(tag);
  if (probe && (probe.digest === undefined || Date.now() - probe.at <= PROBE_FRESH_MS)) return probe.digest;
  return registry.headTarget(tag).catch(() => undefined);
}

/**
 * Blob pushes into `repo` by digest, each digest once: two uploads of one blob at once could leave
 * the registry without it when the manifest that needs it arrives.
 */
function pushOnce(registry: RegistryPort, repo: string, staging: LayerStaging | undefined): (desc: Descriptor, open: () => AsyncIterable<Uint8Array>, mountFrom?: string) => Promise<void> {
  const started = new Map<string, Promise<void>>();
  return (desc, open, mountFrom) => {
    let p = started.get(desc.digest);
    if (!p) {
      const staged = staging?.take(repo, desc.digest);
      started.set(desc.digest, (p = staged ? staged.then((s) => s.push()) : registry.pushBlob(repo, desc, open, mountFrom)));
    }
    return p;
  };
}

/** `registry/repo:tag` or `registry/repo@digest` → `registry/repo`. */
export function repositoryOf(ref: string): string {
  const r = parseReference(ref);
  return `${r.registry}/${r.repository}`;
}

async function push(session: BuildSession, registry: RegistryPort, images: Assembled[], index: BlobBytes | undefined, { attestations, reserved }: PublishExtras): Promise<{ refs: string[]; referrers: Set<string> }> {
  const referrers = new Set<string>();
  const { request } = session;
  const repos = [...new Set(request.tags.map(repositoryOf))];
  const top = index ?? images[0].manifest;
  const { tags, archTags, all } = tagsWritten(request, images.map((img) => img.platform));
  // What each tag names now (asked as the build began, or now): a tag that already names what it
  // would get is not written again (a rebuild that changed nothing), as go-containerregistry's
  // remote.Write skips an existing manifest. Unknown (no answer, no digest header): written.
  const naming = new Map(all.map((tag) => [tag, currentTarget(registry, tag, session.tagProbes)]));
  const putTag = async (tag: string, m: BlobBytes) => {
    if ((await naming.get(tag)) !== m.digest) await registry.putManifest(tag, m.bytes, m.mediaType);
  };
  const byDigest = (repo: string, digest: string) => `${repo}@${digest}`;
  for (const repo of repos) {
    const pushBlob = pushOnce(registry, repo, session.staging);
    const small = (desc: Descriptor, bytes: Uint8Array) => pushBlob(desc, async function* () { yield bytes; });
    const attesting = startAttestations(registry, repo, images.map((img) => img.manifest.digest), small, { made: attestations, reserved: reserved?.get(repo) });
    // A platform manifest the repository has already has every blob it names (the registry checked
    // them when it took the manifest, and keeps what a manifest references): a rebuild that changed
    // nothing costs one HEAD per platform, not one per blob — and none where the repository's tags
    // already name this image or index (then the registry has taken all of it).
    const tagsHere = tags.filter((t) => repositoryOf(t) === repo);
    const named = tagsHere.length > 0 && (await Promise.all(tagsHere.map((t) => naming.get(t)))).every((d) => d === top.digest);
    const present = named ? images.map(() => true) : await Promise.all(images.map(async (img) => (await registry.headTarget(byDigest(repo, img.manifest.digest))) === img.manifest.digest));
    const missing = images.filter((_, i) => !present[i]);
    const held = missing.length ? await (session.heldBlobs?.().get(repo) ?? new Set<string>()) : new Set<string>();
    const pushNew: typeof pushBlob = (desc, open, mountFrom) => (held.has(desc.digest) ? Promise.resolve() : pushBlob(desc, open, mountFrom));
    // Every blob first: the layers of every platform (shared ones once) at most 4 at a time, the
    // configs beside them; then each platform's manifest and its attestations, side by side.
    await boundedAll(4, missing.flatMap((img) => blobsOf(session, img, pushNew)));
    await Promise.all(missing.map((img) => putManifestOf(session, registry, repo, byDigest(repo, img.manifest.digest), img)));
    // Referrers before the tags: once a tag names the image, its attestations are there. The index
    // goes up by digest beside them (no tag names it yet), or in a merge (whose tags get another);
    // else the tags store it.
    const [, stores] = await Promise.all([
      index && (attesting.pushing || request.merge) ? registry.putManifest(byDigest(repo, index.digest), index.bytes, index.mediaType) : undefined,
      attesting.finish(),
    ]);
    for (const store of stores) referrers.add(store);
  }
  await Promise.all(tags.map((tag) => putTag(tag, top)));
  await Promise.all(archTags.map(({ tag, platform }) => putTag(tag, images[platform].manifest)));
  session.progress.info(`pushed ${formatPlatform(images[0].platform)}${images.length > 1 ? ` and ${images.length - 1} more` : ''} as ${top.digest}`);
  return { refs: all, referrers };
}

/**
 * What each repository of `tags` holds now (heldBlobs of its first tag), read once, from the first
 * call on: build() hands it to the session, which calls it at the first step that misses the cache,
 * so the reads run beside the build's work (and a fully cached build makes none).
 */
export function heldBlobsReader(registry: RegistryPort, tags: string[], platforms: Platform[]): () => Map<string, Promise<Set<string>>> {
  let reads: Map<string, Promise<Set<string>>> | undefined;
  return () => {
    reads ??= new Map([...new Set(tags.map(repositoryOf))].map((repo) => [repo, heldBlobs(registry, tags.find((t) => repositoryOf(t) === repo)!, platforms)]));
    return reads;
  };
}

/**
 * The blobs `tag` holds now for `platforms` (its manifest's, or those of its index's manifests for
 * them): they are in the repository — the registry checked them when it took that manifest and keeps
 * what a manifest references — so a rebuild that changed one layer asks for that layer alone, not
 * for every one. Any failure: none known.
 * (Were one gone by the time our manifest arrives, putManifestOf pushes every blob again.)
 */
async function heldBlobs(registry: RegistryPort, tag: string, platforms: Platform[]): Promise<Set<string>> {
  const held = new Set<string>();
  const take = (bytes: Uint8Array) => {
    const m = JSON.parse(Buffer.from(bytes).toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
    for (const d of [m.config, ...(m.layers ?? [])]) if (typeof d?.digest === 'string') held.add(d.digest);
  };
  try {
    const top = await registry.getManifest(tag);
    if (!top) return held;
    if (!isIndexMediaType(top.mediaType)) {
      take(top.bytes);
      return held;
    }
    const index = JSON.parse(Buffer.from(top.bytes).toString('utf8')) as { manifests?: Array<Descriptor & { platform?: Platform }> };
    const wanted = (index.manifests ?? []).filter((d) => d.platform && platforms.some((p) => platformMatches(p, d.platform!)));
    for (const m of await Promise.all(wanted.map((d) => registry.getManifest(`${repositoryOf(tag)}@${d.digest}`)))) if (m && !isIndexMediaType(m.mediaType)) take(m.bytes);
  } catch {
    held.clear(); // unreadable: none known, every blob is asked for
  }
  return held;
}

type BlobPush = ReturnType<typeof pushOnce>;

/** The uploads of `img`'s blobs through `push`, to run as the caller bounds them: its layers, then its config. */
function blobsOf(session: BuildSession, img: Assembled, push: BlobPush): Array<() => Promise<void>> {
  return [
    ...img.state.layers.map((l: LayerRef, i) => () => push(img.layers[i].descriptor, () => blobStream(session, l), l.repository)),
    () => push({ mediaType: img.configMediaType, digest: img.config.digest, size: img.config.bytes.length }, async function* () { yield img.config.bytes; }),
  ];
}

/**
 * PUTs an image's manifest under `ref` in `repo`; where the registry answers that it lacks one of
 * its blobs, they go up again (each asked for anew) and the PUT follows, at most twice: another
 * pusher's upload of the same blob at the same moment (a matrix job's) can leave distribution
 * without it for a while.
 */
async function putManifestOf(session: BuildSession, registry: RegistryPort, repo: string, ref: string, img: Assembled): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await registry.putManifest(ref, img.manifest.bytes, img.manifest.mediaType);
      return;
    } catch (e) {
      if (attempt >= 2 || !(e instanceof RegistryAnswerError && e.codes.includes('MANIFEST_BLOB_UNKNOWN'))) throw e;
      await boundedAll(4, blobsOf(session, img, pushOnce(registry, repo, undefined)));
    }
  }
}

/** Records this job's platforms per repository and writes the index when every platform is there. */
async function mergeJobs(session: BuildSession, registry: RegistryPort, images: Assembled[], pushed: string[]): Promise<BlobBytes | undefined> {
  const { request } = session;
  const spec = request.merge!;
  const mine = images.map((img) => ({ platform: img.platform, ...img.manifest }));
  let merged: BlobBytes | undefined;
  for (const repo of [...new Set(request.tags.map(repositoryOf))]) {
    const tags = request.tags.filter((t) => repositoryOf(t) === repo);
    // A record tag names this job's platform manifest moments after its PUT by digest, so the other
    // job's upload of a shared blob can make the registry refuse it the same way: the same retry.
    const store: MergeStore = {
      getManifest: (ref) => registry.getManifest(ref),
      deleteTag: registry.deleteTag && ((ref) => registry.deleteTag!(ref)),
      async putManifest(ref, bytes, mediaType) {
        const img = images.find((i) => i.manifest.bytes === bytes); // `mine` holds these very bytes
        if (!img) return registry.putManifest(ref, bytes, mediaType);
        await putManifestOf(session, registry, repo, ref, img);
        return img.manifest.digest;
      },
    };
    const outcome = await recordAndMerge(store, repo, spec, mine, tags);
    if (outcome.index) {
      merged = outcome.index;
      pushed.unshift(...tags);
      session.progress.info(`merge ${spec.id}: every platform is pushed (${spec.platforms.map(formatPlatform).join(', ')}); wrote index ${outcome.index.digest} to ${tags.join(', ')}`);
      if (outcome.removed?.length) session.progress.info(`merge ${spec.id}: removed the record tags ${outcome.removed.join(', ')}`);
    } else {
      session.progress.info(`merge ${spec.id}: still missing ${outcome.missing.map(formatPlatform).join(', ')} in ${repo}; the job that pushes the last platform writes the index`);
    }
  }
  return merged;
}

/**
 * A layer's bytes from the local store (fetched first when still in its registry), read 1 MiB at a
 * time: with the default 64 KiB a 9 MB layer's upload to a local registry took 59-77 ms, with 1 MiB 47-56.
 */
export async function* blobStream(session: BuildSession, layer: LayerRef): AsyncIterable<Uint8Array> {
  yield* createReadStream(await session.layers.local(layer), { highWaterMark: 1 << 20 });
}
