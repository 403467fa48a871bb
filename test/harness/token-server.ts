// Test fixture: a Docker-style token server (the `realm` of distribution's `auth: token:`).
// GET /token with Basic credentials (or none = anonymous) and POST /token with an OAuth2
// refresh_token (what `identitytoken` logins use) issue RS256 JWTs whose signing certificate is the
// registry's root bundle. Anonymous callers may pull repositories under `public/`, nothing else.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createSign, randomUUID, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TokenRequestRecord {
  method: string;
  account?: string;
  scopes: string[];
  grantType?: string;
}

export interface TokenServer {
  realm: string;
  issuer: string;
  certFile: string;
  /** Refresh tokens accepted by POST (grant_type=refresh_token), mapped to their account. */
  identityTokens: Record<string, string>;
  requests: TokenRequestRecord[];
  /** Lifetime of issued tokens in seconds (changeable between requests). */
  expiresIn: number;
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

interface Access { type: string; name: string; actions: string[] }

function parseScope(scope: string): Access | undefined {
  // repository:name:pull,push — the name may contain a port-less path; actions are last.
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',').filter(Boolean) };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

export async function startTokenServer(opts: { dir: string; service: string; users: Record<string, string> }): Promise<TokenServer> {
  const keyFile = join(opts.dir, 'token.key');
  const certFile = join(opts.dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
    '-subj', '/CN=slipway token signer', '-addext', 'keyUsage=critical,digitalSignature,keyCertSign', '-addext', 'basicConstraints=critical,CA:TRUE'], { stdio: 'pipe' });
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const issuer = 'slipway-test-issuer';

  const state: TokenServer = {
    realm: '', issuer, certFile, identityTokens: {}, requests: [], expiresIn: 300,
    stop: async () => { await new Promise((r) => server.close(r)); server.closeAllConnections(); },
  };

  function sign(account: string | undefined, access: Access[]): string {
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: account ?? '', aud: opts.service, exp: now + state.expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(key);
    return `${input}.${b64url(signature)}`;
  }

  function grant(account: string | undefined, scopes: string[]): Access[] {
    const out: Access[] = [];
    for (const s of scopes) {
      const a = parseScope(s);
      if (!a || a.type !== 'repository') continue;
      const actions = account ? a.actions.filter((x) => x === 'pull' || x === 'push' || x === 'delete' || x === '*')
        : a.name.startsWith('public/') ? a.actions.filter((x) => x === 'pull') : [];
      out.push({ ...a, actions });
    }
    return out;
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname !== '/token') { res.writeHead(404).end(); return; }
      let account: string | undefined;
      let scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      let grantType: string | undefined;
      if (req.method === 'POST') {
        const form = new URLSearchParams(await readBody(req));
        grantType = form.get('grant_type') ?? undefined;
        scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        if (grantType === 'refresh_token') account = state.identityTokens[form.get('refresh_token') ?? ''];
        else if (grantType === 'password') account = opts.users[form.get('username') ?? ''] === form.get('password') ? form.get('username')! : undefined;
        if (!account) { res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}'); return; }
      } else {
        const authz = req.headers.authorization;
        if (authz?.startsWith('Basic ')) {
          const [user, ...rest] = Buffer.from(authz.slice(6), 'base64').toString().split(':');
          if (opts.users[user] !== rest.join(':')) { res.writeHead(401, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}'); return; }
          account = user;
        }
      }
      state.requests.push({ method: req.method ?? 'GET', account, scopes, grantType });
      const token = sign(account, grant(account, scopes));
      const body: Record<string, unknown> = { token, access_token: token, expires_in: state.expiresIn, issued_at: new Date().toISOString() };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    })().catch((err: unknown) => { res.writeHead(500).end(String(err)); });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  state.realm = `http://127.0.0.1:${port}/token`;
  return state;
}
