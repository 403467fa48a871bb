// Registry credentials and auth challenges: docker config.json (`auths`, `credHelpers`,
// `credsStore`, `identitytoken`), WWW-Authenticate parsing, and Bearer tokens per scope.
import { readFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { UserError } from '../errors.ts';

export type Credential =
  | { username: string; password: string }
  | { identityToken: string };

export interface Challenge {
  scheme: 'bearer' | 'basic';
  realm?: string;
  service?: string;
  scope?: string;
}

/** Parses one WWW-Authenticate header (`Bearer realm="…",service="…",scope="…"`). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1].toLowerCase();
  if (scheme !== 'bearer' && scheme !== 'basic') return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  return { scheme, realm: params.realm, service: params.service, scope: params.scope };
}

/** Where the CLI finds docker's config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: Record<string, string | undefined>, homeDir: string): string {
  return env.DOCKER_CONFIG ? join(env.DOCKER_CONFIG, 'config.json') : join(homeDir, '.docker', 'config.json');
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

/** The key docker stores a registry under; Docker Hub keeps its historical v1 URL. */
function configKeys(host: string): string[] {
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1'];
  }
  return [host, `https://${host}`, `http://${host}`, `https://${host}/v1/`, `https://${host}/v2/`];
}

function normaliseKey(key: string): string {
  const stripped = key.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  return stripped === 'index.docker.io' || stripped === 'registry-1.docker.io' ? 'docker.io' : stripped;
}

async function runHelper(helper: string, serverURL: string): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new UserError(`credential helper ${program} could not be run: ${e.message}`, { hint: `install ${program} or remove it from your docker config.json` }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) {
        // Helpers print this when they hold nothing for the server: anonymous access then.
        if (/credentials not found/i.test(out + err)) { resolve(undefined); return; }
        reject(new UserError(`credential helper ${program} failed for ${serverURL}: ${(out + err).trim() || 'exit ' + code}`));
        return;
      }
      try {
        const j = JSON.parse(out) as { Username?: string; Secret?: string };
        if (!j.Secret) { resolve(undefined); return; }
        resolve(j.Username === '<token>' ? { identityToken: j.Secret } : { username: j.Username ?? '', password: j.Secret });
      } catch {
        reject(new UserError(`credential helper ${program} printed something that is not JSON`));
      }
    });
    child.stdin.end(serverURL);
  });
}

/** Finds credentials for `host` in a docker config.json (missing file = anonymous). */
export async function credentialsFromDockerConfig(configPath: string, host: string): Promise<Credential | undefined> {
  if (!existsSync(configPath)) return undefined;
  let cfg: DockerConfig;
  try {
    cfg = JSON.parse(readFileSync(configPath, 'utf8')) as DockerConfig;
  } catch (err) {
    throw new UserError(`cannot read docker config ${configPath}: ${err instanceof Error ? err.message : String(err)}`, { hint: 'fix the JSON or point DOCKER_CONFIG at another directory' });
  }
  const keys = configKeys(host);
  const serverURL = keys[0];
  const helperEntry = Object.entries(cfg.credHelpers ?? {}).find(([k]) => normaliseKey(k) === normaliseKey(host));
  if (helperEntry) return runHelper(helperEntry[1], helperEntry[0]);
  if (cfg.credsStore) {
    const stored = await runHelper(cfg.credsStore, serverURL);
    if (stored) return stored;
  }
  const entry = Object.entries(cfg.auths ?? {}).find(([k]) => normaliseKey(k) === normaliseKey(host))?.[1];
  if (!entry) return undefined;
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString();
    const i = decoded.indexOf(':');
    if (i < 0) throw new UserError(`docker config ${configPath}: the "auth" of ${host} is not base64 of user:password`);
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  if (entry.username !== undefined && entry.password !== undefined) return { username: entry.username, password: entry.password };
  return undefined;
}

export function basicHeader(c: { username: string; password: string }): string {
  return 'Basic ' + Buffer.from(`${c.username}:${c.password}`).toString('base64');
}
