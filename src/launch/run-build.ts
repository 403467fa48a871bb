// One build with its own registry client, stopped by SIGINT/SIGTERM: the steps are killed, the
// build unmounts and removes what it made, and the client closes, whatever the outcome.
import type { CheckReport } from '../checks/index.ts';
import { build, check, registryPort, type BuildResult, type Progress } from '../engine/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { UserError } from '../errors.ts';

export async function runBuild(request: BuildRequest, deps: { progress: Progress; registry: RegistryClientOptions }): Promise<BuildResult> {
  const client = new RegistryClient(deps.registry);
  const interrupted = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => { received ??= signal; interrupted.abort(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const registry = registryPort(client, { mirrors: request.mirrors, warn: (m) => deps.progress.warn(m) });
    return await build(request, { progress: deps.progress, registry, signal: interrupted.signal });
  } catch (e) {
    if (received) throw new InterruptedError(received, e);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await client.close();
  }
}

/** The build stopped because the process got `signal`; it cleaned up first. */
export class InterruptedError extends UserError {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals, cause: unknown) {
    super(`the build was interrupted (${signal}); it stopped its steps and removed what it made`, { cause });
    this.signal = signal;
  }
}

/** The build checks alone (`--check`), with a registry client for the base images. */
export async function runCheck(request: BuildRequest, deps: { registry: RegistryClientOptions }): Promise<CheckReport> {
  const client = new RegistryClient(deps.registry);
  try {
    return await check(request, { registry: registryPort(client, { mirrors: request.mirrors }) });
  } finally {
    await client.close();
  }
}
