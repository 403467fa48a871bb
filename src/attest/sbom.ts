// The SBOM of one platform image: an SPDX 2.3 JSON document of the packages its package databases
// and lockfiles list (packages.ts), read from the image's layers as they end up (whiteouts apply).
import { createHash } from 'node:crypto';
import { layerView } from '../fs/index.ts';
import { isPackageDatabase, packagesOf, type FoundPackage } from './packages.ts';

export const spdxPredicateType = 'https://spdx.dev/Document';

const osReleasePaths = ['etc/os-release', 'usr/lib/os-release'];

export interface SbomInput {
  /** Layer blobs of the image, bottom first (local files). */
  layers: string[];
  /** The image's name for the document, e.g. `registry/app:1 (linux/amd64)`. */
  name: string;
  /** The manifest digest the document describes. */
  digest: string;
  created: string;
  tool: string;
}

function spdxId(kind: string, text: string): string {
  return `SPDXRef-${kind}-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

function spdxPackage(p: FoundPackage): Record<string, unknown> {
  return {
    name: p.name,
    SPDXID: spdxId('Package', `${p.purl} ${p.source}`),
    versionInfo: p.version,
    ...(p.supplier ? { supplier: /^[^<]*<[^>]*>$/.test(p.supplier) ? `Person: ${p.supplier}` : `Organization: ${p.supplier}` } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseDeclared: p.license ?? 'NOASSERTION',
    sourceInfo: `read from ${p.source}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
  };
}

/** The SPDX 2.3 document (the predicate of the in-toto statement). */
export async function sbomDocument(input: SbomInput): Promise<Record<string, unknown>> {
  const view = await layerView(input.layers, (p) => isPackageDatabase(p) || osReleasePaths.includes(p));
  const files = new Map<string, Buffer>();
  for (const p of view.paths()) {
    if (!isPackageDatabase(p)) continue;
    const b = view.file(p);
    if (b) files.set(p, b);
  }
  const osRelease = osReleasePaths.map((p) => view.file(p)).find(Boolean)?.toString('utf8');
  const packages = packagesOf(new Map([...files].sort(([a], [b]) => (a < b ? -1 : 1))), osRelease);
  const spdxPackages = packages.map(spdxPackage);
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: input.name,
    documentNamespace: `https://slipway.invalid/spdx/${input.digest.replace(':', '-')}`,
    creationInfo: { created: input.created, creators: [`Tool: ${input.tool}`] },
    packages: spdxPackages,
    relationships: spdxPackages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
}
