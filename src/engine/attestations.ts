// The attestations a request asks for (provenance, SBOM), made for each platform image once its
// manifest is final, and pushed as referrers of it: their blobs first, then the artifact manifest,
// which the registry's referrers API lists or the referrers tag schema index does.
import {
  attestationArtifact, imagePurl, inTotoStatement, provenancePredicate, sbomDocument, slsaPredicateType, spdxPredicateType, type Attestation,
} from '../attest/index.ts';
import { formatPlatform, jsonBytes, platformMatches, parsePlatform, sha256, type Platform } from '../oci/index.ts';
import type { Assembled } from './assemble.ts';
import type { RegistryPort } from './ports.ts';
import type { BuildSession } from './session.ts';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

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

/**
 * Pushes the artifact manifests of the attestations of the platform manifest `subject` into
 * `repo` (their blobs are there already), listed in one update of the referrers list. Returns how
 * the registry lists them.
 */
export async function pushAttestations(registry: RegistryPort, repo: string, subject: string, list: Attestation[]): Promise<string | undefined> {
  if (list.length === 0) return undefined;
  if (!registry.pushReferrers) throw new Error('this registry access cannot push referrers');
  return registry.pushReferrers(repo, list.map((a) => ({ bytes: a.manifest.bytes, desc: a.descriptor })), subject);
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
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  await writeFile(tmp, JSON.stringify(doc));
  await rename(tmp, file).catch(() => rm(tmp, { force: true }));
  return doc;
}

