// The attestations a request asks for (provenance, SBOM), made for each platform image once its
// manifest is final, and pushed as referrers of it: their blobs first, then the artifact manifest,
// which the registry's referrers API lists or the referrers tag schema index does.
import {
  attestationArtifact, imagePurl, inTotoStatement, provenancePredicate, sbomDocument, slsaPredicateType, spdxPredicateType, type Attestation,
} from '../attest/index.ts';
import { formatPlatform, jsonBytes, platformMatches, parsePlatform, sha256, type Descriptor, type Platform } from '../oci/index.ts';
import type { Assembled } from './assemble.ts';
import type { RegistryPort, UploadReservation } from './ports.ts';
import type { BuildSession } from './session.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../write-all.ts';

export interface MadeAttestations {
  /** Per platform manifest digest. */
  byManifest: Map<string, Attestation[]>;
  /** The provenance predicate per platform (buildx's buildx.build.provenance). */
  provenance: Map<string, unknown>;
}

export async function makeAttestations(session: BuildSession, images: Assembled[], timing: { started: Date; buildPlatform: Platform }): Promise<MadeAttestations> {
  const made: MadeAttestations = { byManifest: new Map(), provenance: new Map() };
  const attest = session.request.attest;
  if (!attest || (!attest.provenance && !attest.sbom)) return made;
  const reporter = session.progress.step(`[attest] ${[attest.provenance ? `provenance (mode=${attest.provenance.mode})` : '', attest.sbom ? 'SBOM' : ''].filter(Boolean).join(' and ')}`);
  try {
    const resolved = await session.resolvedImages();
    const finished = new Date();
    const invocationId = crypto.randomUUID();
    for (const img of images) {
      const subject = { mediaType: img.manifest.mediaType, digest: img.manifest.digest, size: img.manifest.bytes.length };
      const names = session.request.tags.length ? session.request.tags.map((t) => imagePurl(t, img.platform)) : [`pkg:docker/_@${img.manifest.digest.slice(7, 19)}?platform=${encodeURIComponent(formatPlatform(img.platform))}`];
      const list: Attestation[] = [];
      if (attest.provenance) {
        const materials = resolved.filter((r) => platformMatches(parsePlatform(r.platform), img.platform)).map((r) => ({ ref: r.ref, digest: r.digest }));
        const predicate = provenancePredicate({
          request: session.request, mode: attest.provenance.mode, platform: img.platform, buildPlatform: timing.buildPlatform, materials,
          started: timing.started, finished, invocationId, builderId: attest.builderId,
        });
        made.provenance.set(formatPlatform(img.platform), predicate);
        list.push(attestationArtifact(subject, slsaPredicateType, inTotoStatement({ names, digest: subject.digest }, slsaPredicateType, predicate)));
      }
      if (attest.sbom) {
        const doc = await cachedSbom(session, img, { name: `${session.request.tags[0] ?? 'image'} (${formatPlatform(img.platform)})`, digest: subject.digest });
        list.push(attestationArtifact(subject, spdxPredicateType, inTotoStatement({ names, digest: subject.digest }, spdxPredicateType, doc)));
      }
      made.byManifest.set(img.manifest.digest, list);
    }
    reporter.done();
    return made;
  } catch (e) {
    reporter.failed(e);
    throw e;
  }
}

/** Makes a blob present in the push's repository (asking first), each digest once. */
export type PushBlobOnce = (desc: Descriptor, bytes: Uint8Array) => Promise<void>;

/**
 * Starts pushing the attestations of the platform manifests `subjects` into `repo` as the push
 * begins. What the referrers list already names is there with its blobs and is left alone (an
 * SBOM of unchanged layers); a provenance statement, new every build, goes up unasked, into an
 * upload `reserved` as the build began where there is one; other blobs are asked for. `finish` —
 * once the platform manifests are in — pushes the artifact manifests and updates the list, and
 * says how the registry lists them; `pushing` says whether there is anything to push at all.
 */
export function startAttestations(registry: RegistryPort, repo: string, subjects: string[], pushBlob: PushBlobOnce, { made, reserved = [] }: { made?: MadeAttestations; reserved?: UploadReservation[] }): { pushing: boolean; finish: () => Promise<Set<string>> } {
  const work = subjects.map((subject) => ({ subject, list: made?.byManifest.get(subject) ?? [] })).filter((w) => w.list.length > 0);
  if (work.length === 0) return { pushing: false, finish: async () => new Set() };
  if (!registry.pushReferrers) throw new Error('this registry access cannot push referrers');
  const fresh = new Map(work.flatMap((w) => w.list.filter((a) => a.predicateType === slsaPredicateType).map((a) => [a.blobs[1].descriptor.digest, a.blobs[1]] as const)));
  const spare = [...reserved];
  const uploaded = Promise.all([...fresh.values()].map((b) => spare.shift()?.upload(b.descriptor, b.bytes) ?? registry.uploadBlob(repo, b.descriptor, b.bytes)));
  const prepared = Promise.all(work.map(async (w) => {
    const listing = registry.readReferrers ? await registry.readReferrers(repo, w.subject) : undefined;
    const listed = new Set(listing?.digests ?? []);
    const todo = w.list.filter((a) => !listed.has(a.descriptor.digest));
    const present = new Set(w.list.filter((a) => listed.has(a.descriptor.digest)).flatMap((a) => a.blobs.map((b) => b.descriptor.digest)));
    await Promise.all(todo.flatMap((a) => a.blobs).filter((b) => !fresh.has(b.descriptor.digest) && !present.has(b.descriptor.digest)).map((b) => pushBlob(b.descriptor, b.bytes)));
    return { ...w, todo, listing };
  }));
  for (const p of [uploaded, prepared]) p.catch(() => undefined); // awaited in finish; no unhandled rejection meanwhile
  return {
    pushing: true,
    async finish() {
      await uploaded;
      const stores = new Set<string>();
      await Promise.all((await prepared).map(async (w) => {
        if (w.todo.length === 0) { stores.add('tag-schema'); return; } // all listed already, by the tag schema
        stores.add(await registry.pushReferrers!(repo, w.todo.map((a) => ({ bytes: a.manifest.bytes, desc: a.descriptor })), w.subject, w.listing));
      }));
      return stores;
    },
  };
}

/**
 * The SBOM of an image is a function of its layers, name and digest (its time is the image's own
 * `created`), so it is kept in the cache dir: a rebuild that changed nothing reads no layer again.
 */
async function cachedSbom(session: BuildSession, img: Assembled, id: { name: string; digest: string }): Promise<unknown> {
  const created = (JSON.parse(Buffer.from(img.config.bytes).toString('utf8')) as { created?: string }).created ?? session.created;
  const key = sha256(jsonBytes({ sbom: 2, layers: img.state.layers.map((l) => l.diffID), ...id, created })).slice('sha256:'.length);
  const file = join(session.layers.cache.dir, 'attest', `sbom-${key}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch { /* not made yet */ }
  const doc = await sbomDocument({ layers: await session.layers.allLocal(img.state.layers), ...id, created, tool: 'slipway' });
  await writeFileAtomic(file, JSON.stringify(doc));
  return doc;
}

