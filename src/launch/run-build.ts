// One build with its own registry client, stopped by SIGINT/SIGTERM: the steps are killed, the
// build unmounts and removes what it made, and the client closes, whatever the outcome.
import type { CheckReport } from '../checks/index.ts';
import { build, check, registryPort, type BuildResult, type Progress } from '../engine/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.ts';
import type { BuildRequest } from '../request/index.ts';

export async function runBuild(request: BuildRequest, deps: { progress: Progress; registry: RegistryClientOptions }): Promise<BuildResult> {
  const client = new RegistryClient(deps.registry);
  const interrupted = new AbortController();
  const onSignal = () => interrupted.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await build(request, { progress: deps.progress, registry: registryPort(client), signal: interrupted.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

/** The build checks alone (`--check`), with a registry client for the base images. */
export async function runCheck(request: BuildRequest, deps: { registry: RegistryClientOptions }): Promise<CheckReport> {
  const client = new RegistryClient(deps.registry);
  try {
    return await check(request, { registry: registryPort(client) });
  } finally {
    await client.close();
  }
}
