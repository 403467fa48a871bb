// The SBOM of one platform image: an SPDX 2.3 JSON document of the packages its package databases,
// lockfiles and Go binaries list (packages.ts), with the files the databases give them (files.ts),
// read from the image's layers as they end up (whiteouts apply). One pass over the layers: every
// regular file's bytes stream through SHA1 and, for ELF files, the Go build info search.
import { createHash } from 'node:crypto';
import { layerView, type FileScan } from '../fs/index.ts';
import { isPackageDatabase, packagesOf, type FoundPackage } from './packages.ts';
import { GoBuildInfoScanner, type GoBuildInfo } from './gobinary.ts';
import { filesOf, verificationCode, type FileFacts, type SpdxFile } from './files.ts';

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

interface Facts extends FileFacts { go?: GoBuildInfo }

function spdxId(kind: string, text: string): string {
  return `SPDXRef-${kind}-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}

function spdxPackage(p: FoundPackage, files: SpdxFile[]): Record<string, unknown> {
  return {
    name: p.name,
    SPDXID: spdxId('Package', `${p.purl} ${p.source}`),
    ...(p.version ? { versionInfo: p.version } : {}),
    ...(p.supplier ? { supplier: /^[^<]*<[^>]*>$/.test(p.supplier) ? `Person: ${p.supplier}` : `Organization: ${p.supplier}` } : {}),
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: files.length > 0,
    ...(files.length ? { packageVerificationCode: { packageVerificationCodeValue: verificationCode(files) }, hasFiles: files.map((f) => f.SPDXID).sort() } : {}),
    licenseDeclared: p.license ?? 'NOASSERTION',
    sourceInfo: `read from ${p.source}${p.note ? ` (${p.note})` : ''}`,
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
  };
}

/** SHA1 of every regular file; the Go build info of ELF files (the search stops when it is found). */
const scanFile: FileScan<Facts> = async (_path, _node, body) => {
  const sha1 = createHash('sha1');
  const go = new GoBuildInfoScanner();
  let searching = true;
  for await (const chunk of body) {
    sha1.update(chunk);
    if (searching) searching = go.push(chunk);
  }
  const info = go.result();
  return { sha1: sha1.digest('hex'), ...(info ? { go: info } : {}) };
};

/** The SPDX 2.3 document (the predicate of the in-toto statement). */
export async function sbomDocument(input: SbomInput): Promise<Record<string, unknown>> {
  const view = await layerView(input.layers, (p) => isPackageDatabase(p) || osReleasePaths.includes(p), scanFile);
  const files = new Map<string, Buffer>();
  const goBinaries = new Map<string, GoBuildInfo>();
  for (const p of [...view.paths()].sort()) {
    const b = isPackageDatabase(p) ? view.file(p) : undefined;
    if (b) files.set(p, b);
    const go = view.scanned(p)?.go;
    if (go && view.stat(p)?.type === 'file') goBinaries.set(p, go);
  }
  const osRelease = osReleasePaths.map((p) => view.file(p)).find(Boolean)?.toString('utf8');
  const packages = packagesOf(files, osRelease, goBinaries);
  const fileElements = new Map<string, SpdxFile>();
  const spdxPackages = packages.map((p) => spdxPackage(p, p.files ? filesOf(view, p.files, fileElements) : []));
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: input.name,
    documentNamespace: `https://slipway.invalid/spdx/${input.digest.replace(':', '-')}`,
    creationInfo: { created: input.created, creators: [`Tool: ${input.tool}`] },
    packages: spdxPackages,
    ...(fileElements.size ? { files: [...fileElements.values()].sort((a, b) => (a.fileName < b.fileName ? -1 : 1)) } : {}),
    relationships: spdxPackages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
}
