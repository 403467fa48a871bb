// Client settings from a user's environment, given as a parameter: credentials from
// $DOCKER_CONFIG/config.json or ~/.docker/config.json (what `docker login` and docker/login-action
// write), and pull mirrors from registries.conf, buildkitd.toml and daemon.json. Shared by the
// CLI's commands and the action.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dockerConfigPath } from './auth.ts';
import type { RegistryClientOptions } from './client.ts';
import { parseBuildkitdToml, parseDaemonJson, parseRegistriesConf, type MirrorRule } from './mirrors.ts';

export function registryOptionsFromEnv(env: Record<string, string | undefined>, opts: { insecureRegistries?: string[]; userAgent: string }): RegistryClientOptions {
  return { dockerConfigPath: dockerConfigPath(env, env.HOME || homedir()), insecureRegistries: opts.insecureRegistries ?? [], userAgent: opts.userAgent };
}

/**
 * Mirror rules from the files users already keep them in, first found first: containers'
 * registries.conf ($CONTAINERS_REGISTRIES_CONF, else the user's, else /etc's) and its `.d/`
 * drop-ins, BuildKit's buildkitd.toml, Docker's daemon.json (user's rootless ones before /etc's).
 */
export function mirrorRulesFromEnv(env: Record<string, string | undefined>, opts: { etcDir?: string } = {}): MirrorRule[] {
  const etc = opts.etcDir ?? '/etc';
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  const first = (paths: string[]) => paths.find((p) => existsSync(p));
  const read = (p: string) => readFileSync(p, 'utf8');
  const dropIns = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.conf')).sort().map((n) => join(dir, n)) : []);
  const rules: MirrorRule[] = [];
  const conf = env.CONTAINERS_REGISTRIES_CONF || first([join(config, 'containers/registries.conf'), join(etc, 'containers/registries.conf')]);
  for (const p of [...(conf && existsSync(conf) ? [conf] : []), ...dropIns(join(config, 'containers/registries.conf.d')), ...dropIns(join(etc, 'containers/registries.conf.d'))]) {
    rules.push(...parseRegistriesConf(read(p), p));
  }
  const buildkitd = first([join(config, 'buildkit/buildkitd.toml'), join(etc, 'buildkit/buildkitd.toml')]);
  if (buildkitd) rules.push(...parseBuildkitdToml(read(buildkitd), buildkitd));
  const daemon = first([join(config, 'docker/daemon.json'), join(etc, 'docker/daemon.json')]);
  if (daemon) rules.push(...parseDaemonJson(read(daemon), daemon));
  return rules;
}
