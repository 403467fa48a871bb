// What a finished build reports to tools: buildx's --metadata-file keys, plus the per-platform
// digests. Written by `slipway build --metadata-file` and the action's `metadata` output alike.
import type { BuildResult } from './build.ts';
import { formatPlatform } from '../oci/index.ts';

export function buildMetadata(r: BuildResult): Record<string, unknown> {
  return {
    'containerimage.digest': r.digest,
    'containerimage.config.digest': r.images.length === 1 ? r.images[0].configDigest : undefined,
    'containerimage.descriptor': r.descriptor,
    ...provenanceKeys(r),
    'image.name': r.tags.join(','),
    platforms: Object.fromEntries(r.images.map((i) => [formatPlatform(i.platform), { digest: i.digest, config: i.configDigest, size: i.size, layers: i.layers }])),
    steps: r.steps,
  };
}

/** buildx's keys: `buildx.build.provenance` for one platform, `buildx.build.provenance/OS/ARCH` for several. */
function provenanceKeys(r: BuildResult): Record<string, unknown> {
  const p = Object.entries(r.provenance ?? {});
  if (p.length === 0) return {};
  if (p.length === 1) return { 'buildx.build.provenance': p[0][1] };
  return Object.fromEntries(p.map(([platform, v]) => [`buildx.build.provenance/${platform}`, v]));
}
