// One registry HTTP exchange, made safe: the scheme scheme.ts chooses (https; http only for
// loopback and registries named insecure), timeouts, auth (anonymous → challenge → Basic or a
// Bearer token per scope), bounded retries with backoff + jitter honouring Retry-After, and
// redirects followed by hand so `Authorization` never reaches another host.
import { Agent, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { chooseScheme, firstGuess, isLoopback, send } from './scheme.ts';
import { basicHeader, credentialsFromDockerConfig, parseChallenge, type Challenge, type Credential } from './auth.ts';

export interface TransportOptions {
  /** docker config.json to read credentials from (the CLI resolves $DOCKER_CONFIG). */
  dockerConfigPath?: string;
  /** Credentials by registry host; these win over the docker config. */
  credentials?: Record<string, Credential>;
  /** Hosts (`host[:port]`) that may use plain http or an unverified certificate. */
  insecureRegistries?: string[];
  /** Extra CA certificates (PEM) trusted for https. */
  ca?: string | Buffer;
  /** Per request: time to response headers and maximum idle time in a body. Default 60 s. */
  timeoutMs?: number;
  /**
   * Slowest body we wait for: a response of N bytes must arrive within timeoutMs + N / this rate,
   * so a server that trickles is cut off (and retried) like one that stalls. Default 16 KiB/s.
   */
  minBytesPerSecond?: number;
  /** Retries after the first attempt, for network errors and 429/5xx. Default 4. */
  retries?: number;
  /** Longest wait we accept from a Retry-After header. Default 60 s. */
  maxRetryAfterMs?: number;
  userAgent?: string;
}

export interface SendRequest {
  registry: string;
  method: string;
  /** Path starting `/v2/`, or an absolute URL the registry gave us (upload Location). */
  path: string;
  /** Token scopes this call needs (`repository:NAME:pull,push`). */
  scopes: string[];
  headers?: Record<string, string>;
  /** A Buffer can be replayed on retry; a stream factory is sent once per call. */
  body?: Buffer | (() => Readable);
  /** Statuses returned to the caller instead of raised as errors. */
  accept: number[];
  /** No retries here: the caller restarts a larger exchange (an upload) itself. */
  once?: boolean;
}

/**
 * A failure worth another attempt (a 5xx or 429 answer, a broken or slow connection) after the
 * retries here were spent or not allowed; `retryAfterMs` is the registry's Retry-After, if any.
 */
export class TransientError extends UserError {
  readonly retryAfterMs?: number;
  constructor(message: string, options: { hint?: string; cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, options);
    this.name = 'TransientError';
    this.retryAfterMs = options.retryAfterMs;
  }
}

export interface SendResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

interface HostState {
  base: string;
  dispatcher: Dispatcher;
  challenge?: Challenge;
  tokens: Map<string, Promise<{ header: string; expiresAt: number }>>;
  credential?: Promise<Credential | undefined>;
  /** The scheme is scheme.ts's first guess until a reply bears it out; `probed` replaces it if none does. */
  tentative?: boolean;
  probed?: Promise<HostState>;
}

const retryStatuses = new Set([408, 429, 500, 502, 503, 504]);
const redirectStatuses = new Set([301, 302, 303, 307, 308]);

function header(h: SendResponse['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Exponential backoff with full jitter on the upper half, capped. */
export function backoffMs(attempt: number): number {
  const base = Math.min(10_000, 200 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

export class Transport {
  readonly opts: TransportOptions;
  private readonly verified: Agent;
  private readonly unverified: Agent;
  private readonly hosts = new Map<string, Promise<HostState>>();
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly minRate: number;

  constructor(opts: TransportOptions = {}) {
    this.opts = opts;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.retries = opts.retries ?? 4;
    this.minRate = opts.minBytesPerSecond ?? 16 << 10;
    // maxHeaderSize: Node's default, given here so that undici need not read it off node:http (the
    // CLI bundle gives undici no node:http: scripts/build.mjs).
    const common = { headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs, connectTimeout: Math.min(this.timeoutMs, 30_000), connections: 16, maxHeaderSize: 16 << 10 };
    // node:tls loads only when a CA is added or an https connection is made (undici requires it
    // lazily): a build against a plain-http local registry never pays for it.
    const ca = opts.ca ? [...process.getBuiltinModule('node:tls').rootCertificates, opts.ca.toString()] : undefined;
    this.verified = new Agent({ ...common, connect: { ca, timeout: Math.min(this.timeoutMs, 30_000) } });
    this.unverified = new Agent({ ...common, connect: { rejectUnauthorized: false, timeout: Math.min(this.timeoutMs, 30_000) } });
  }

  async close(): Promise<void> {
    await Promise.all([this.verified.close(), this.unverified.close()]);
  }

  private insecureAllowed(registry: string): boolean {
    return isLoopback(registry) || (this.opts.insecureRegistries ?? []).includes(registry);
  }

  /** The base URL and agent for `registry`, chosen once per build (scheme.ts). */
  private host(registry: string): Promise<HostState> {
    let p = this.hosts.get(registry);
    if (!p) {
      const guess = firstGuess(registry, { insecureAllowed: this.insecureAllowed(registry) });
      p = guess ? Promise.resolve({ base: guess.base, dispatcher: this.verified, tokens: new Map(), tentative: true }) : this.negotiate(registry);
      this.hosts.set(registry, p);
      p.catch(() => this.hosts.delete(registry));
    }
    return p;
  }

  private async negotiate(registry: string): Promise<HostState> {
    const { base, verify } = await chooseScheme(registry, { insecureAllowed: this.insecureAllowed(registry), verified: this.verified });
    return { base, dispatcher: verify ? this.verified : this.unverified, tokens: new Map() };
  }

  /** The probed state in place of a tentative one (once, shared by the requests that ask). */
  private probe(registry: string, tentative: HostState): Promise<HostState> {
    tentative.probed ??= this.negotiate(registry).then((state) => (this.hosts.set(registry, Promise.resolve(state)), state));
    return tentative.probed;
  }

  private credential(state: HostState, registry: string): Promise<Credential | undefined> {
    if (!state.credential) {
      const explicit = this.opts.credentials?.[registry];
      state.credential = explicit ? Promise.resolve(explicit)
        : this.opts.dockerConfigPath ? credentialsFromDockerConfig(this.opts.dockerConfigPath, registry) : Promise.resolve(undefined);
    }
    return state.credential;
  }

  private async authorization(state: HostState, registry: string, scopes: string[], fresh: boolean): Promise<string | undefined> {
    const ch = state.challenge;
    if (!ch) return undefined;
    const cred = await this.credential(state, registry);
    if (ch.scheme === 'basic') {
      if (!cred) throw new UserError(`registry ${registry} requires a login`, { hint: `log in first (docker login ${registry}) or pass credentials` });
      if ('identityToken' in cred) throw new UserError(`registry ${registry} asks for Basic auth but only an identity token is configured`);
      return basicHeader(cred);
    }
    const key = [...scopes].sort().join(' ');
    // A pull,push token also serves pulls of that repository; concurrent calls share one fetch.
    const wider = scopes.length === 1 && scopes[0].endsWith(':pull') ? scopes[0] + ',push' : undefined;
    for (const k of fresh ? [] : [key, wider]) {
      const cached = k ? state.tokens.get(k) : undefined;
      const t = await cached?.catch(() => undefined);
      if (t && t.expiresAt > Date.now()) return t.header;
    }
    const pending = this.fetchToken(registry, ch, scopes, cred);
    state.tokens.set(key, pending);
    pending.catch(() => state.tokens.delete(key));
    return (await pending).header;
  }

  private async fetchToken(registry: string, ch: Challenge, scopes: string[], cred: Credential | undefined): Promise<{ header: string; expiresAt: number }> {
    if (!ch.realm) throw new UserError(`registry ${registry} sent a Bearer challenge without a realm`);
    const realm = new URL(ch.realm);
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.insecureAllowed(realm.host))) {
      throw new UserError(`registry ${registry} wants tokens from ${realm.origin}, which is not https`, { hint: `name ${realm.host} with --insecure-registry if that is intended` });
    }
    const dispatcher = this.insecureAllowed(realm.host) ? this.unverified : this.verified;
    let lastErr: unknown;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      try {
        let res: Dispatcher.ResponseData;
        if (cred && 'identityToken' in cred) {
          const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: cred.identityToken, client_id: 'slipway', service: ch.service ?? '', scope: scopes.join(' ') });
          res = await send(dispatcher, realm, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() });
        } else {
          const u = new URL(realm);
          if (ch.service) u.searchParams.set('service', ch.service);
          for (const s of scopes) u.searchParams.append('scope', s);
          res = await send(dispatcher, new URL(u), { method: 'GET', headers: cred ? { authorization: basicHeader(cred) } : {} });
        }
        const text = await res.body.text();
        if (retryStatuses.has(res.statusCode)) { lastErr = new Error(`token server answered ${res.statusCode}`); await sleep(backoffMs(attempt)); continue; }
        if (res.statusCode === 401 || res.statusCode === 403) {
          throw new UserError(`registry ${registry} refused the ${cred ? 'configured credentials' : 'anonymous request'} (token server ${realm.origin} answered ${res.statusCode})`,
            { hint: cred ? `check the login for ${registry} (docker login ${registry})` : `log in to ${registry} first` });
        }
        if (res.statusCode !== 200) throw new UserError(`token server ${realm.origin} for ${registry} answered ${res.statusCode}: ${text.slice(0, 200)}`);
        const j = JSON.parse(text) as { token?: string; access_token?: string; expires_in?: number; issued_at?: string };
        const token = j.token ?? j.access_token;
        if (!token) throw new UserError(`token server ${realm.origin} for ${registry} returned no token`);
        const lifetime = Math.max(60, j.expires_in ?? 60) * 1000;
        const issued = j.issued_at ? Date.parse(j.issued_at) || Date.now() : Date.now();
        // Renew a little early so a long transfer never starts with an about-to-expire token.
        return { header: `Bearer ${token}`, expiresAt: issued + lifetime - 10_000 };
      } catch (err) {
        if (err instanceof UserError) throw err;
        lastErr = err;
        await sleep(backoffMs(attempt));
      }
    }
    throw new UserError(`could not get a token for ${registry} from ${realm.origin}: ${lastErr instanceof Error ? lastErr.message : String(lastErr)}`);
  }

  /** Sends one registry request with auth, retries and safe redirects; returns accepted statuses. */
  async send(req: SendRequest): Promise<SendResponse> {
    let state = await this.host(req.registry);
    const replayable = !req.once && (req.body === undefined || Buffer.isBuffer(req.body));
    // A body that cannot be sent twice is not sent on a guess.
    if (state.tentative && !replayable) state = await this.probe(req.registry, state);
    let authRetried = false;
    let freshToken = false;
    for (let attempt = 0; ; attempt++) {
      let res: SendResponse;
      try {
        const auth = await this.authorization(state, req.registry, req.scopes, freshToken);
        freshToken = false;
        res = await this.exchange(state, req, auth);
      } catch (err) {
        if (state.tentative && !(err instanceof UserError)) {
          state = await this.probe(req.registry, state);
          attempt--;
          continue;
        }
        if (err instanceof UserError || !replayable || attempt >= this.retries) throw wrapNetworkError(err, req);
        await sleep(backoffMs(attempt));
        continue;
      }
      if (state.tentative && res.status === 400) {
        await res.body.dump();
        state = await this.probe(req.registry, state);
        attempt--;
        continue;
      }
      state.tentative = false;
      if (res.status === 401 && !authRetried) {
        const ch = parseChallenge(header(res.headers, 'www-authenticate'));
        await res.body.dump();
        if (ch && replayable) {
          state.challenge = ch;
          authRetried = true;
          freshToken = true;
          attempt--;
          continue;
        }
      }
      if (res.status === 429 && !req.accept.includes(429)) {
        const wait = retryAfterValueMs(header(res.headers, 'retry-after'));
        const max = this.opts.maxRetryAfterMs ?? 60_000;
        if (wait !== undefined && wait > max) {
          await res.body.dump();
          throw rateLimited(req.registry, wait, max);
        }
      }
      if (retryStatuses.has(res.status) && replayable && attempt < this.retries && !req.accept.includes(res.status)) {
        await res.body.dump();
        await sleep(retryAfterMs(header(res.headers, 'retry-after'), attempt, this.opts.maxRetryAfterMs ?? 60_000));
        continue;
      }
      if (req.accept.includes(res.status)) return res;
      throw await statusError(req, res);
    }
  }

  private async exchange(state: HostState, req: SendRequest, auth: string | undefined): Promise<SendResponse> {
    let url = new URL(req.path, state.base);
    const origin = url.origin;
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'slipway', ...req.headers };
    if (auth) headers.authorization = auth;
    let method = req.method;
    let body: Buffer | Readable | undefined = typeof req.body === 'function' ? req.body() : req.body;
    for (let hop = 0; ; hop++) {
      const dispatcher = url.origin === origin ? state.dispatcher : this.verified;
      const abort = new AbortController();
      const res = await send(dispatcher, url, {
        method: method as Dispatcher.HttpMethod, headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs, signal: abort.signal,
      });
      const location = res.headers.location;
      if (!redirectStatuses.has(res.statusCode) || typeof location !== 'string' || (method !== 'GET' && method !== 'HEAD')) {
        this.bodyDeadline(res, abort);
        return { status: res.statusCode, headers: res.headers, body: res.body, url: url.href };
      }
      await res.body.dump();
      if (hop >= 5) throw new UserError(`registry ${req.registry}: too many redirects for ${req.path}`);
      const next = new URL(location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') throw new UserError(`registry ${req.registry} redirected ${req.path} from https to ${next.protocol}`, { hint: 'refusing to downgrade a transfer to plain http' });
      // Blob storage (S3, GCS, a CDN) gets a signed URL: our credentials stay with the registry.
      if (next.origin !== origin) delete headers.authorization;
      if (res.statusCode === 303) { method = 'GET'; body = undefined; }
      url = next;
    }
  }
  /** Cuts a body that arrives slower than `minRate` (undici's bodyTimeout only sees a full stall). */
  private bodyDeadline(res: Dispatcher.ResponseData, abort: AbortController): void {
    const length = Number(header(res.headers, 'content-length'));
    if (!Number.isFinite(length) || length <= 0) return;
    const ms = this.timeoutMs + (length / this.minRate) * 1000;
    const timer = setTimeout(() => {
      abort.abort(Object.assign(new Error(`the body of ${length} bytes did not arrive within ${Math.round(ms)} ms (slower than ${this.minRate} bytes/s)`), { code: 'ETIMEDOUT' }));
    }, ms);
    timer.unref();
    const clear = (): void => clearTimeout(timer);
    res.body.once('end', clear);
    res.body.once('close', clear);
    res.body.once('error', clear);
  }
}

/** Retry-After in ms (seconds or an HTTP date), undefined when absent or unreadable. */
function retryAfterValueMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

function retryAfterMs(value: string | undefined, attempt: number, max: number): number {
  const ms = retryAfterValueMs(value);
  return ms === undefined ? backoffMs(attempt) : Math.min(ms, max);
}

/** A rate limit longer than we wait: one error that names it and the ways around it, at once. */
function rateLimited(registry: string, waitMs: number, maxMs: number): UserError {
  const name = registry === 'docker.io' ? 'Docker Hub (docker.io)' : `registry ${registry}`;
  return new UserError(`${name} is rate-limiting these pulls: it answered 429 Too Many Requests and asks to wait ${Math.ceil(waitMs / 1000)} s, longer than slipway waits (${Math.round(maxMs / 1000)} s)`, {
    hint: `log in to ${registry} for a higher limit (docker login, or docker/login-action), or pull through a mirror ` +
      `(--registry-mirror ${registry}=MIRROR, registries.conf or daemon.json; on GitLab the dependency proxy, $CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX); ` +
      'with a layer cache that knows the base image, slipway uses it instead',
  });
}

function wrapNetworkError(err: unknown, req: SendRequest): unknown {
  if (err instanceof UserError) return err;
  const e = err as { code?: string; message?: string };
  return new TransientError(`registry ${req.registry}: ${req.method} ${req.path.replace(/\?.*$/, '')} failed: ${e.code ? e.code + ' ' : ''}${e.message ?? String(err)}`,
    { hint: 'check that the registry is reachable; slipway retried with backoff', cause: err });
}

async function statusError(req: SendRequest, res: SendResponse): Promise<UserError> {
  let detail = '';
  let codes: string[] = [];
  try {
    const text = req.method === 'HEAD' ? '' : (await res.body.text()).slice(0, 2000);
    const j = JSON.parse(text || '{}') as { errors?: Array<{ code?: string; message?: string }> };
    codes = (j.errors ?? []).map((e) => e.code ?? '').filter(Boolean);
    detail = (j.errors ?? []).map((e) => `${e.code ?? ''}${e.message ? ': ' + e.message : ''}`).join('; ') || text.slice(0, 200);
  } catch { /* body was not JSON */ }
  const what = `${req.method} ${new URL(req.path, 'http://x').pathname}`;
  if (res.status === 401 || res.status === 403) {
    return new UserError(`registry ${req.registry} denied ${what} (${res.status}${detail ? ' ' + detail : ''})`, { hint: `check that you are logged in to ${req.registry} with access to this repository` });
  }
  const message = `registry ${req.registry}: ${what} answered ${res.status}${detail ? ' (' + detail + ')' : ''}`;
  if (retryStatuses.has(res.status)) {
    const after = header(res.headers, 'retry-after');
    return new TransientError(message, { retryAfterMs: after === undefined ? undefined : retryAfterMs(after, 0, 60_000) });
  }
  return new RegistryAnswerError(message, res.status, codes);
}

/** A registry's refusal, with the error codes of its answer (the distribution spec's, e.g. MANIFEST_BLOB_UNKNOWN). */
export class RegistryAnswerError extends UserError {
  readonly status: number;
  readonly codes: string[];
  constructor(message: string, status: number, codes: string[]) {
    super(message);
    this.name = 'RegistryAnswerError';
    this.status = status;
    this.codes = codes;
  }
}

export function responseHeader(res: SendResponse, name: string): string | undefined {
  return header(res.headers, name);
}
