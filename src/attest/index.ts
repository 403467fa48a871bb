/**
 * attest: attestations of a built image — SLSA provenance v1 (provenance.ts) and an SPDX 2.3 SBOM
 * from the image's package databases, lockfiles and Go binaries' build info (sbom.ts, packages.ts,
 * rpm.ts, golang.ts, gobinary.ts) with the files the databases list (files.ts) — each as an in-toto
 * statement in an OCI 1.1 artifact manifest whose subject is the platform manifest (artifact.ts).
 * Pure documents from what it is given (and the image's layer files, the context's .git); pushing
 * them is the engine's. Imports ../oci, ../fs, ../request (types) only.
 */
export { attestationArtifact, inTotoStatement, inTotoMediaType, predicateTypeAnnotation, type Attestation } from './artifact.ts';
export { provenancePredicate, slsaPredicateType, imagePurl, gitSource, type ProvenanceInput } from './provenance.ts';
export { sbomDocument, spdxPredicateType, type SbomInput } from './sbom.ts';
export { packagesOf, isPackageDatabase, type FoundPackage } from './packages.ts';
