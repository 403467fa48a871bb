// Client settings from a user's environment, given as a parameter: credentials from
// $DOCKER_CONFIG/config.json or ~/.docker/config.json (what `docker login` and docker/login-action
// write). Shared by the CLI's commands and the action.
import { homedir } from 'node:os';
import { dockerConfigPath } from './auth.ts';
import type { RegistryClientOptions } from './client.ts';

export function registryOptionsFromEnv(env: Record<string, string | undefined>, opts: { insecureRegistries?: string[]; userAgent: string }): RegistryClientOptions {
  return { dockerConfigPath: dockerConfigPath(env, env.HOME || homedir()), insecureRegistries: opts.insecureRegistries ?? [], userAgent: opts.userAgent };
}
