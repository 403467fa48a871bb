// Registry access from the user's environment: credentials from $DOCKER_CONFIG/config.json or
// ~/.docker/config.json (what `docker login` and docker/login-action write). Shared by cli/ and action/.
import { homedir } from 'node:os';
import { registryPort } from '../engine/remote.ts';
import type { RegistryPort } from '../engine/index.ts';
import { dockerConfigPath, RegistryClient } from '../registry/index.ts';

export function registryClientFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>, userAgent: string): RegistryClient {
  return new RegistryClient({ dockerConfigPath: dockerConfigPath(env, env.HOME || homedir()), insecureRegistries, userAgent });
}

export function registryFromEnv(insecureRegistries: string[], env: Record<string, string | undefined>, userAgent: string): RegistryPort {
  return registryPort(registryClientFromEnv(insecureRegistries, env, userAgent));
}
