// The rules of SPDX 2.3 JSON that slipway's documents touch, checked by hand: the fields each
// element requires and the ones it may have (the spec's JSON schema allows no others), the values
// the enumerations allow, and the cross-rules of the spec's text — unique SPDX ids, every reference
// resolves, a package with `filesAnalyzed: false` contains no files and one with files has a
// verification code, every File has a SHA1 checksum.
import assert from 'node:assert/strict';

type Obj = Record<string, unknown>;

const shapes: Record<string, { required: string[]; allowed: string[] }> = {
  document: { required: ['SPDXID', 'creationInfo', 'dataLicense', 'name', 'spdxVersion'], allowed: ['documentNamespace', 'packages', 'files', 'relationships', 'documentDescribes', 'comment', 'externalDocumentRefs', 'hasExtractedLicensingInfos', 'annotations', 'snippets'] },
  creationInfo: { required: ['created', 'creators'], allowed: ['comment', 'licenseListVersion'] },
  package: {
    required: ['SPDXID', 'downloadLocation', 'name'],
    allowed: ['versionInfo', 'supplier', 'originator', 'filesAnalyzed', 'hasFiles', 'packageVerificationCode', 'licenseDeclared', 'licenseConcluded', 'licenseInfoFromFiles', 'copyrightText', 'sourceInfo', 'externalRefs', 'checksums', 'comment', 'description', 'summary', 'homepage', 'primaryPackagePurpose'],
  },
  file: { required: ['SPDXID', 'checksums', 'fileName'], allowed: ['licenseConcluded', 'licenseInfoInFiles', 'copyrightText', 'comment', 'fileTypes', 'noticeText'] },
  checksum: { required: ['algorithm', 'checksumValue'], allowed: [] },
  externalRef: { required: ['referenceCategory', 'referenceLocator', 'referenceType'], allowed: ['comment'] },
  relationship: { required: ['spdxElementId', 'relatedSpdxElement', 'relationshipType'], allowed: ['comment'] },
  verificationCode: { required: ['packageVerificationCodeValue'], allowed: ['packageVerificationCodeExcludedFiles'] },
};

function shape(kind: string, o: unknown, where: string): Obj {
  assert.equal(typeof o, 'object', `${where} is an object`);
  const obj = o as Obj;
  const s = shapes[kind];
  for (const k of s.required) assert.ok(k in obj, `${where} lacks ${k}`);
  for (const k of Object.keys(obj)) assert.ok(s.required.includes(k) || s.allowed.includes(k), `${where} has ${k}, which SPDX 2.3 does not define there`);
  return obj;
}

const idPattern = /^SPDXRef-[A-Za-z0-9.-]+$/;
const hex40 = /^[0-9a-f]{40}$/;

/** Throws (an assertion) unless `doc` keeps the rules above. */
export function checkSpdx23(doc: unknown): void {
  const d = shape('document', doc, 'document');
  assert.equal(d.spdxVersion, 'SPDX-2.3');
  assert.equal(d.dataLicense, 'CC0-1.0');
  assert.equal(d.SPDXID, 'SPDXRef-DOCUMENT');
  const ci = shape('creationInfo', d.creationInfo, 'creationInfo');
  assert.ok(Array.isArray(ci.creators) && ci.creators.length >= 1);
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  const files = new Map<string, Obj>();
  for (const [i, f] of ((d.files ?? []) as unknown[]).entries()) {
    const file = shape('file', f, `files[${i}]`);
    const sums = file.checksums as unknown[];
    assert.ok(sums.length >= 1);
    for (const c of sums) shape('checksum', c, `files[${i}].checksums`);
    const sha1 = (sums as Obj[]).find((c) => c.algorithm === 'SHA1');
    assert.ok(sha1 && hex40.test(String(sha1.checksumValue)), `files[${i}] has a SHA1`);
    assert.match(String(file.SPDXID), idPattern);
    assert.ok(!ids.has(String(file.SPDXID)), `duplicate id ${String(file.SPDXID)}`);
    ids.add(String(file.SPDXID));
    files.set(String(file.SPDXID), file);
  }
  for (const [i, p] of ((d.packages ?? []) as unknown[]).entries()) {
    const pkg = shape('package', p, `packages[${i}]`);
    assert.match(String(pkg.SPDXID), idPattern);
    assert.ok(!ids.has(String(pkg.SPDXID)), `duplicate id ${String(pkg.SPDXID)}`);
    ids.add(String(pkg.SPDXID));
    for (const r of (pkg.externalRefs ?? []) as unknown[]) {
      const ref = shape('externalRef', r, `packages[${i}].externalRefs`);
      assert.ok(['OTHER', 'PERSISTENT-ID', 'SECURITY', 'PACKAGE-MANAGER'].includes(String(ref.referenceCategory)));
      assert.ok(!/\s/.test(String(ref.referenceLocator)), 'a locator has no spaces');
    }
    const has = (pkg.hasFiles ?? []) as string[];
    if (pkg.filesAnalyzed === false) assert.equal(has.length, 0, `packages[${i}] has files but filesAnalyzed false`);
    if (has.length) {
      const code = shape('verificationCode', pkg.packageVerificationCode, `packages[${i}].packageVerificationCode`);
      assert.match(String(code.packageVerificationCodeValue), hex40);
      for (const id of has) assert.ok(files.has(id), `packages[${i}] lists a file ${id} the document lacks`);
    }
  }
  for (const [i, r] of ((d.relationships ?? []) as unknown[]).entries()) {
    const rel = shape('relationship', r, `relationships[${i}]`);
    assert.ok(ids.has(String(rel.spdxElementId)) && ids.has(String(rel.relatedSpdxElement)), `relationships[${i}] refers to ids the document has`);
    assert.ok(['DESCRIBES', 'CONTAINS', 'DEPENDS_ON', 'OTHER'].includes(String(rel.relationshipType)));
  }
}
