// Registry access for the CLI: credentials from $DOCKER_CONFIG or ~/.docker/config.json (what
// `docker login` and docker/login-action write), insecure hosts from the flags.
import { homedir } from 'node:os';
import { registryPort } from '../engine/remote.ts';
import type { RegistryPort } from '../engine/index.ts';
import { dockerConfigPath, RegistryClient } from '../registry/index.ts';
import { version } from './version.ts';

export function registryClientFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>): RegistryClient {
  return new RegistryClient({ dockerConfigPath: dockerConfigPath(env, env.HOME || homedir()), insecureRegistries, userAgent: `slipway/${version}` });
}

export function registryFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>): RegistryPort {
  return registryPort(registryClientFromEnv(insecureRegistries, env));
}
