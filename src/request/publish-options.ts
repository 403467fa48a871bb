// The publishing part of a request — load, annotations, attestations — from raw strings, checked
// before the build starts (as buildx refuses `--load` of several platforms up front).
import { UserError } from '../errors.ts';
import { applyAttest, parseAnnotation, parseProvenanceFlag, parseSbomFlag } from './publish.ts';
import type { Annotation, AttestRequest, OutputSpec } from './types.ts';

export interface RawPublishOptions {
  load?: boolean;
  /** `--annotation` values (buildx's syntax). */
  annotations?: string[];
  /** `--provenance VALUE`; '' or undefined: the default below. */
  provenance?: string;
  /** `--sbom VALUE`. */
  sbom?: string;
  /** `--attest` values. */
  attest?: string[];
  /** Provenance when nothing asks for or against it (the action's default is build-push-action's). */
  provenanceDefault?: { mode: 'min' | 'max' };
}

export function publishOptions(raw: RawPublishOptions, built: { platforms: number; outputs: OutputSpec[] }): { load?: boolean; annotations?: Annotation[]; attest?: AttestRequest } {
  const load = Boolean(raw.load);
  if (load && built.platforms > 1) {
    throw new UserError(`--load holds one platform, but ${built.platforms} were asked for: the docker image store cannot hold a manifest list`, {
      hint: 'build one platform with --load (e.g. --platform linux/amd64), or push all of them with --push',
    });
  }
  const annotations = (raw.annotations ?? []).flatMap(parseAnnotation);
  const attest: AttestRequest = { sbom: false };
  const shorthand = raw.provenance === undefined ? null : parseProvenanceFlag(raw.provenance);
  attest.provenance = shorthand === null ? undefined : shorthand;
  const sbom = raw.sbom === undefined ? null : parseSbomFlag(raw.sbom);
  if (sbom !== null) attest.sbom = sbom;
  for (const a of raw.attest ?? []) applyAttest(a, attest);
  const provenanceSaid = shorthand !== null || (raw.attest ?? []).some((a) => /(^|,)\s*type=provenance/.test(a));
  // As build-push-action: no default provenance when the only output is the docker image store.
  const pushes = built.outputs.some((o) => o.type === 'registry');
  if (!provenanceSaid && raw.provenanceDefault && pushes) attest.provenance = raw.provenanceDefault;
  return {
    ...(load ? { load } : {}),
    ...(annotations.length ? { annotations } : {}),
    ...(attest.provenance || attest.sbom ? { attest } : {}),
  };
}
