// Test harness: runs the real CNCF distribution registry (/usr/bin/docker-registry) on a free
// loopback port, in four modes: open, htpasswd basic auth, token auth (with our token server
// fixture, as Docker Hub / GHCR do it) and TLS with a throw-away CA. Tests that need it skip when
// the binary is missing (see `registryMissing`).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { startTokenServer, type TokenServer } from './token-server.ts';

export const registryBinary = '/usr/bin/docker-registry';

/** A reason to skip registry tests on this machine, or undefined when they can run. */
export function registryMissing(): string | undefined {
  if (!existsSync(registryBinary)) return `${registryBinary} not installed (Debian package docker-registry)`;
  return undefined;
}

export interface RegistryOptions {
  auth?: 'none' | 'basic' | 'token';
  tls?: boolean;
  /** Manifest and blob deletion (REGISTRY_STORAGE_DELETE_ENABLED); default true. */
  deleteEnabled?: boolean;
}

export interface AccessLogEntry { method: string; path: string; status: number }

export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of a reference. */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  username?: string;
  password?: string;
  /** PEM of the CA that signed the TLS certificate (tls mode). */
  caFile?: string;
  /** The token server (token mode): its request log counts token fetches. */
  tokenServer?: TokenServer;
  /** Requests the registry answered, parsed from its own log (in arrival order). */
  accessLog(): AccessLogEntry[];
  /** The access log once lines for responses already received have arrived (the log lags a little). */
  settledLog(): Promise<AccessLogEntry[]>;
  /** Forgets the access log so far. */
  clearLog(): void;
  /** A docker config.json with this registry's credentials, written to a temp file. */
  dockerConfig(): string;
  stop(): Promise<void>;
}

/** A free loopback TCP port (bound and released; good enough for tests). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Generates a CA and a server certificate for 127.0.0.1/localhost with openssl. */
export function makeTlsCertificates(dir: string): { caFile: string; certFile: string; keyFile: string } {
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const certFile = join(dir, 'server.crt');
  const ext = join(dir, 'server.ext');
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=slipway test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', ext]);
  return { caFile, certFile, keyFile };
}

function yaml(lines: Record<string, unknown>, indent = ''): string {
  let out = '';
  for (const [k, v] of Object.entries(lines)) {
    if (v !== null && typeof v === 'object') out += `${indent}${k}:\n${yaml(v as Record<string, unknown>, indent + '  ')}`;
    else out += `${indent}${k}: ${JSON.stringify(v)}\n`;
  }
  return out;
}

function probe(url: string, caFile?: string): Promise<number> {
  return new Promise((resolve) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url + '/v2/', { ca: caFile ? readFileSync(caFile) : undefined, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const dir = mkdtempSync(join(tmpdir(), 'slipway-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `${opts.tls ? 'https' : 'http'}://${host}`;
  const username = auth === 'none' ? undefined : 'slipway';
  const password = auth === 'none' ? undefined : 'p4ss-' + Math.random().toString(36).slice(2);

  const http: Record<string, unknown> = { addr: host, secret: 'slipway-test-secret' };
  let caFile: string | undefined;
  if (opts.tls) {
    const certs = makeTlsCertificates(dir);
    caFile = certs.caFile;
    http.tls = { certificate: certs.certFile, key: certs.keyFile };
  }
  let tokenServer: TokenServer | undefined;
  let authConfig: Record<string, unknown> | undefined;
  if (auth === 'basic') {
    const htpasswd = join(dir, 'htpasswd');
    writeFileSync(htpasswd, execFileSync('htpasswd', ['-Bbn', username!, password!]));
    authConfig = { htpasswd: { realm: 'slipway-basic', path: htpasswd } };
  } else if (auth === 'token') {
    tokenServer = await startTokenServer({ dir, service: host, users: { [username!]: password! } });
    authConfig = { token: { realm: tokenServer.realm, service: host, issuer: tokenServer.issuer, rootcertbundle: tokenServer.certFile } };
  }
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'json', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: opts.deleteEnabled ?? true }, maintenance: { uploadpurging: { enabled: false } } },
    http,
  };
  if (authConfig) config.auth = authConfig;
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, yaml(config));

  // Logs go to a file, not a pipe: a test that blocks its event loop (spawnSync, execSync) must not
  // stall the registry on a full pipe.
  const logFile = join(dir, 'registry.log');
  const logFd = openSync(logFile, 'a');
  const child: ChildProcess = spawn(registryBinary, ['serve', configFile], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let logStart = 0;
  const output = () => { try { return readFileSync(logFile, 'utf8').slice(0, 200_000); } catch { return ''; } };
  const readLog = (): AccessLogEntry[] => {
    const entries: AccessLogEntry[] = [];
    let text: string;
    try { text = readFileSync(logFile, 'utf8').slice(logStart); } catch { return entries; }
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line) as Record<string, unknown>;
        if (e.msg === 'response completed' && typeof e['http.request.method'] === 'string') {
          entries.push({ method: e['http.request.method'] as string, path: String(e['http.request.uri']), status: Number(e['http.response.status']) });
        }
      } catch { /* a partly written line */ }
    }
    return entries;
  };
  const clearLog = () => { try { logStart = readFileSync(logFile, 'utf8').length; } catch { logStart = 0; } };
  let exited = false;
  child.on('exit', () => { exited = true; });

  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    await tokenServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`docker-registry exited during start-up:\n${output()}`);
    }
    const status = await probe(url, caFile);
    if (status === 200 || status === 401) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not become ready on ${url}:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  clearLog();

  return {
    host, url, username, password, caFile, tokenServer,
    accessLog: readLog,
    settledLog: async () => { await new Promise((r) => setTimeout(r, 150)); return readLog(); },
    clearLog,
    dockerConfig: () => {
      const file = join(dir, `docker-config-${Math.random().toString(36).slice(2)}.json`);
      const auths = username ? { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } : {};
      writeFileSync(file, JSON.stringify({ auths }));
      return file;
    },
    stop,
  };
}

/** `--creds`/`--tls-verify` flags for skopeo talking to this registry. */
export function skopeoFlags(reg: TestRegistry, prefix: 'src' | 'dest' | '' = ''): string[] {
  const p = prefix ? `--${prefix}-` : '--';
  const flags = [`${p}tls-verify=false`];
  if (reg.username) flags.push(`${p}creds=${reg.username}:${reg.password}`);
  return flags;
}
