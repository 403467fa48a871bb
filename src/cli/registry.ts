// Registry access for the CLI: the shared environment lookup (request/registry.ts) with our User-Agent.
import type { RegistryPort } from '../engine/index.ts';
import type { RegistryClient } from '../registry/index.ts';
import { registryClientFromEnv as clientFromEnv, registryFromEnv as portFromEnv } from '../request/index.ts';
import { version } from './version.ts';

export function registryClientFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>): RegistryClient {
  return clientFromEnv(insecureRegistries, env, `slipway/${version}`);
}

export function registryFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>): RegistryPort {
  return portFromEnv(insecureRegistries, env, `slipway/${version}`);
}
