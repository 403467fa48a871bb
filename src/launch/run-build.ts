// One build with its own registry client, stopped by SIGINT/SIGTERM: the steps are killed, the
// build unmounts and removes what it made, and the client closes, whatever the outcome.
import { build, registryPort, type BuildResult, type Progress } from '../engine/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.ts';
import type { BuildRequest } from '../request/index.ts';

export async function runBuild(request: BuildRequest, deps: { progress: Progress; registry: RegistryClientOptions }): Promise<BuildResult> {
  const client = new RegistryClient(deps.registry);
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const registry = registryPort(client, { mirrors: request.mirrors, warn: (m) => deps.progress.warn(m) });
    return await build(request, { progress: deps.progress, registry, signal: interrupted.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}
