// An attestation as stored: an in-toto statement (https://in-toto.io/Statement/v1) about one
// platform manifest, wrapped in an OCI 1.1 artifact manifest — artifactType
// application/vnd.in-toto+json, the empty config, one layer holding the statement, and `subject` =
// the platform manifest — so the referrers API (or its tag schema) finds it next to the image.
import { jsonBytes, MediaType, sha256, type Descriptor, type Manifest } from '../oci/index.ts';

export const inTotoMediaType = 'application/vnd.in-toto+json';
export const predicateTypeAnnotation = 'in-toto.io/predicate-type';
const emptyJson = Buffer.from('{}');

export interface Attestation {
  predicateType: string;
  /** The statement's bytes (the artifact's one layer). */
  statement: Buffer;
  /** The artifact manifest. */
  manifest: { bytes: Buffer; digest: string; mediaType: string };
  /** Its descriptor as a referrers list holds it. */
  descriptor: Descriptor;
  /** The blobs it needs: the empty config and the statement. */
  blobs: Array<{ descriptor: Descriptor; bytes: Buffer }>;
}

/** The statement about the manifest `digest`, known by each of `names` (one subject entry each). */
export function inTotoStatement(subject: { names: string[]; digest: string }, predicateType: string, predicate: unknown): Buffer {
  const [alg, hex] = subject.digest.split(':');
  const subjects = subject.names.map((name) => ({ name, digest: { [alg]: hex } }));
  return jsonBytes({ _type: 'https://in-toto.io/Statement/v1', subject: subjects, predicateType, predicate });
}

export function attestationArtifact(subject: Descriptor, predicateType: string, statement: Buffer): Attestation {
  const config: Descriptor = { mediaType: MediaType.ociEmpty, digest: sha256(emptyJson), size: emptyJson.length };
  const layer: Descriptor = { mediaType: inTotoMediaType, digest: sha256(statement), size: statement.length, annotations: { [predicateTypeAnnotation]: predicateType } };
  const annotations = { [predicateTypeAnnotation]: predicateType };
  const manifest: Manifest = {
    schemaVersion: 2, mediaType: MediaType.ociManifest, artifactType: inTotoMediaType, config, layers: [layer],
    subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size }, annotations,
  };
  const bytes = jsonBytes(manifest);
  const digest = sha256(bytes);
  return {
    predicateType, statement,
    manifest: { bytes, digest, mediaType: MediaType.ociManifest },
    descriptor: { mediaType: MediaType.ociManifest, digest, size: bytes.length, artifactType: inTotoMediaType, annotations },
    blobs: [{ descriptor: config, bytes: emptyJson }, { descriptor: layer, bytes: statement }],
  };
}
