// The annotations a request asks for at one level (buildx's `--annotation LEVEL[PLATFORM]:KEY=VALUE`),
// for one platform where the level is per manifest. Later values of a key win, as in buildx.
import { platformMatches, type Platform } from '../oci/index.ts';
import type { AnnotationLevel, BuildRequest } from '../request/index.ts';

export function annotationsAt(request: BuildRequest, level: AnnotationLevel, platform?: Platform): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let any = false;
  for (const a of request.annotations ?? []) {
    if (a.level !== level) continue;
    if (a.platform && platform && !platformMatches(a.platform, platform)) continue;
    out[a.key] = a.value;
    any = true;
  }
  return any ? out : undefined;
}
