// Which scheme a registry host is spoken to in, and whether its certificate is verified: https by
// default; for a host named insecure, https if it answers, with an unverified certificate if that
// is what failed, else plain http; for a loopback host, plain http first — BuildKit's default for
// localhost (util/resolver fillInsecureOpts, with containerd's docker.MatchLocalhost) — then the
// same https steps. No traffic leaves the machine, and a cached build against a local registry
// then makes no TLS handshake at all (node:tls is not even loaded). A loopback host is not probed
// up front: its first request goes over plain http (`firstGuess`), and only a reply that says it
// was not (an error, or 400 as a TLS server gives to plain http) makes the transport probe as
// above and send it again. containerd's resolver likewise sends its first request, not a ping.
import type { Dispatcher } from 'undici';

export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]';
}

export function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

/**
 * One request through `dispatcher`'s own API (`Dispatcher.request`), not undici's top-level
 * `request`: the bundle then needs undici's agent and request API only (scripts/build.mjs).
 */
export function send(dispatcher: Dispatcher, url: URL, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path'>): Promise<Dispatcher.ResponseData> {
  return dispatcher.request({ ...opts, origin: url.origin, path: `${url.pathname}${url.search}` });
}

function isCertificateError(err: unknown): boolean {
  const code = String((err as { code?: string; cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? '');
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code);
}

/** GET of the API's base endpoint at `base` (`http://host`, `https://host`): its status; throws what the connection does. */
async function probe(dispatcher: Dispatcher, base: string): Promise<number> {
  const res = await send(dispatcher, new URL(`${base}/v2/`), { method: 'GET', headersTimeout: 10_000 });
  await res.body.dump();
  return res.statusCode;
}

/**
 * Whether `base` answers the API's base endpoint over plain http. A TLS server answers plain
 * http with 400 (Go's net/http, nginx) or drops the connection: then it is not http.
 */
async function speaksPlainHttp(dispatcher: Dispatcher, base: string): Promise<boolean> {
  const status = await probe(dispatcher, base).catch(() => undefined);
  return status === 200 || status === 401;
}

/** The scheme a loopback host is first spoken to in, before anything is known of it. */
export function firstGuess(registry: string, opts: { insecureAllowed: boolean }): { base: string; verify: boolean } | undefined {
  return opts.insecureAllowed && isLoopback(registry) ? { base: `http://${apiHost(registry)}`, verify: true } : undefined;
}

/** Base URL (`https://host`, `http://host`) for `registry`, and whether its certificate is verified. */
export async function chooseScheme(registry: string, opts: { insecureAllowed: boolean; verified: Dispatcher }): Promise<{ base: string; verify: boolean }> {
  const [https, http] = [`https://${apiHost(registry)}`, `http://${apiHost(registry)}`];
  if (!opts.insecureAllowed) return { base: https, verify: true };
  if (isLoopback(registry) && await speaksPlainHttp(opts.verified, http)) return { base: http, verify: true };
  try {
    await probe(opts.verified, https);
    return { base: https, verify: true };
  } catch (err) {
    if (isCertificateError(err)) return { base: https, verify: false };
    return { base: http, verify: true };
  }
}
