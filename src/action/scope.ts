// The default cache scope: what a build is for (Dockerfile, target, platforms), so the jobs of a
// matrix (one platform or target each) keep separate cache entries instead of replacing each other's.
import { relative } from 'node:path';
import { formatPlatform, hostPlatform, type Platform } from '../oci/index.ts';
import type { BuildRequest } from '../request/index.ts';

/** e.g. `default-linux-amd64+linux-arm64`, `test-linux-arm64-v8`, `docker_api.Dockerfile-app-linux-amd64`. */
export function defaultCacheScope(request: Pick<BuildRequest, 'target' | 'platforms' | 'dockerfile'>, workspace: string, host: Platform = hostPlatform()): string {
  const platforms = (request.platforms.length ? request.platforms : [host]).map(formatPlatform).sort();
  const parts: string[] = [];
  const file = relative(workspace, request.dockerfile.path);
  if (file !== 'Dockerfile') parts.push(file);
  parts.push(request.target || 'default', platforms.join('+').replace(/\//g, '-'));
  return parts.join('-').replace(/[^A-Za-z0-9._+-]+/g, '_');
}
