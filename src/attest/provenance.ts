// SLSA provenance v1 for one platform image, with the field set BuildKit's v1 predicate has where it
// applies: the build definition (frontend, its args, configSource = the Dockerfile, resolved
// dependencies = base images by digest and the git commit of the context) and the run details
// (builder id, invocation id, start and finish). mode=min leaves out build args, secret ids and the
// Dockerfile's bytes; secret values are never in the request given here, in any mode.
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatPlatform, type Platform } from '../oci/index.ts';
import type { BuildRequest } from '../request/index.ts';

export const slsaPredicateType = 'https://slsa.dev/provenance/v1';
/** The buildType whose externalParameters layout (configSource, request) this predicate follows. */
export const buildType = 'https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md';

export interface ProvenanceInput {
  request: BuildRequest;
  mode: 'min' | 'max';
  platform: Platform;
  buildPlatform: Platform;
  /** Images the build resolved for this platform: reference → manifest digest. */
  materials: Array<{ ref: string; digest: string }>;
  started: Date;
  finished: Date;
  invocationId?: string;
  builderId?: string;
}

/** A package URL for an image reference, as BuildKit names materials: pkg:docker/NAME@TAG?platform=…. */
export function imagePurl(ref: string, platform?: Platform): string {
  const at = ref.lastIndexOf('@');
  const base = at > 0 ? ref.slice(0, at) : ref;
  const colon = base.lastIndexOf(':');
  const hasTag = colon > base.lastIndexOf('/');
  const name = hasTag ? base.slice(0, colon) : base;
  const tag = hasTag ? base.slice(colon + 1) : 'latest';
  const q = platform ? `?platform=${encodeURIComponent(formatPlatform(platform))}` : '';
  return `pkg:docker/${name}@${tag}${q}`;
}

/** The context's git checkout (remote URL and commit), read from .git without running git. */
export function gitSource(dir: string): { uri: string; commit: string } | undefined {
  const gitDir = join(dir, '.git');
  if (!existsSync(join(gitDir, 'HEAD'))) return undefined;
  try {
    const head = readFileSync(join(gitDir, 'HEAD'), 'utf8').trim();
    let commit = head;
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (ref) {
      const loose = join(gitDir, ref);
      commit = existsSync(loose) ? readFileSync(loose, 'utf8').trim()
        : (readFileSync(join(gitDir, 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`)) ?? '').split(' ')[0];
    }
    if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(commit)) return undefined;
    const config = existsSync(join(gitDir, 'config')) ? readFileSync(join(gitDir, 'config'), 'utf8') : '';
    const url = /\[remote "origin"\][^[]*?url\s*=\s*(\S+)/.exec(config)?.[1];
    return { uri: url ? url.replace(/^(https?:\/\/)[^@/]*@/, '$1') : `file://${dir}`, commit };
  } catch {
    return undefined;
  }
}

export function provenancePredicate(p: ProvenanceInput): Record<string, unknown> {
  const { request, mode } = p;
  const max = mode === 'max';
  const args: Record<string, string> = {};
  if (request.target) args.target = request.target;
  if (max) for (const [k, v] of Object.entries(request.buildArgs)) args[`build-arg:${k}`] = v;
  if (max) for (const [k, v] of Object.entries(request.labels)) args[`label:${k}`] = v;
  const git = gitSource(request.contextDir);
  const dockerfile = Buffer.from(request.dockerfile.contents);
  const resolvedDependencies = [
    ...p.materials.map((m) => ({ uri: imagePurl(m.ref, p.platform), digest: { [m.digest.split(':')[0]]: m.digest.split(':')[1] } })),
    ...(git ? [{ uri: git.uri, digest: { [git.commit.length === 40 ? 'sha1' : 'sha256']: git.commit } }] : []),
  ];
  return {
    buildDefinition: {
      buildType,
      externalParameters: {
        configSource: {
          ...(git ? { uri: git.uri, digest: { [git.commit.length === 40 ? 'sha1' : 'sha256']: git.commit } } : {}),
          path: request.dockerfile.path.startsWith(request.contextDir + '/') ? request.dockerfile.path.slice(request.contextDir.length + 1) : 'Dockerfile',
        },
        request: {
          frontend: 'dockerfile.v0',
          args: { ...args, platform: formatPlatform(p.platform) },
          locals: [{ name: 'context' }, { name: 'dockerfile' }],
          ...(max && request.secrets.length ? { secrets: request.secrets.map((s) => ({ id: s.id })) } : {}),
        },
      },
      internalParameters: {
        builderPlatform: formatPlatform(p.buildPlatform),
        ...(max ? { dockerfile: { sha256: createHash('sha256').update(dockerfile).digest('hex'), content: dockerfile.toString('base64') } } : {}),
      },
      resolvedDependencies,
    },
    runDetails: {
      builder: { id: p.builderId ?? '' },
      metadata: {
        invocationID: p.invocationId ?? randomUUID(),
        startedOn: p.started.toISOString(),
        finishedOn: p.finished.toISOString(),
        // The context is a local directory: its files are not listed as dependencies, so not complete.
        buildkit_completeness: { request: max, resolvedDependencies: false },
        buildkit_reproducible: request.sourceDateEpoch !== undefined,
        buildkit_hermetic: false,
      },
    },
  };
}
