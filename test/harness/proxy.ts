// Test fixture: a recording HTTP proxy in front of a registry. It counts requests (method, path,
// whether Authorization was sent) and injects faults a real network produces: an error status with
// Retry-After, a connection dropped part-way through a body, a body that trickles (1 byte/s) or
// stalls part-way with the connection left open, a redirect to another host (as registries do for
// blob storage), or a corrupted body. With `ecrLike`, uploads are answered as ECR answers them
// (201 to every PATCH, a Range that stops advancing after the second chunk).
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before } from 'node:test';
import { pushFixture } from './fixtures.ts';
import { startRegistry, type TestRegistry } from './registry.ts';

export type Fault =
  | { status: number; retryAfter?: string; code?: string }
  | { dropAfterBytes: number }
  | { redirectTo: string }
  | { corruptBody: true }
  | { trickleBytesPerSec: number }
  | { stallAfterBytes: number };

export interface FaultRule {
  method?: string;
  path: RegExp;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  fault: Fault;
}

export interface ProxyRecord {
  method: string;
  path: string;
  authorization?: string;
  range?: string;
  status: number;
  fault?: string;
  /** performance.now() when the request's headers arrived. */
  at: number;
  /** The body came chunked (no content-length), as a stream of unknown length is sent. */
  chunked: boolean;
}

export interface RecordingProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  url: string;
  requests: ProxyRecord[];
  addFault(rule: FaultRule): void;
  stop(): Promise<void>;
}

export interface ProxyOptions {
  /** Credentials the proxy adds itself (a blob store that trusts its own signed URLs). */
  injectBasicAuth?: { username: string; password: string };
  /** Host name in `url`/`host` (e.g. `localhost`, to look like another host than 127.0.0.1). */
  hostname?: string;
  /** Answer uploads as ECR does: 201 to PATCH, and from the third PATCH of an upload on the Range of the second. */
  ecrLike?: boolean;
  /** Announce OCI-Chunk-Min-Length on upload starts (a registry that wants chunks). */
  chunkMinLength?: number;
}

export async function startProxy(upstream: string, opts: ProxyOptions = {}): Promise<RecordingProxy> {
  const up = new URL(upstream);
  const rules: Array<FaultRule & { left: number }> = [];
  const requests: ProxyRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const patches = new Map<string, { n: number; range?: string }>();

  /** The upload response headers and status as an ECR-like or chunk-wanting registry sends them. */
  function rewrite(req: IncomingMessage, status: number, headers: Record<string, unknown>): number {
    const path = (req.url ?? '').split('?')[0];
    if (opts.chunkMinLength && req.method === 'POST' && /\/blobs\/uploads\/$/.test(path) && status === 202) headers['oci-chunk-min-length'] = String(opts.chunkMinLength);
    if (!opts.ecrLike || req.method !== 'PATCH') return status;
    const upload = path.replace(/^.*\/blobs\/uploads\//, '');
    const seen = patches.get(upload) ?? { n: 0 };
    seen.n++;
    if (seen.n <= 2) seen.range = headers.range as string | undefined;
    else if (seen.range) headers.range = seen.range;
    patches.set(upload, seen);
    // ECR's Location names the same upload; keep it pointing at the same session.
    return status === 202 ? 201 : status;
  }

  function takeFault(req: IncomingMessage): Fault | undefined {
    const path = req.url ?? '/';
    for (const r of rules) {
      if (r.left > 0 && (!r.method || r.method === req.method) && r.path.test(path)) {
        r.left--;
        return r.fault;
      }
    }
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse) {
    const rec: ProxyRecord = {
      method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization, range: req.headers.range, status: 0,
      at: performance.now(), chunked: /chunked/i.test(req.headers['transfer-encoding'] ?? ''),
    };
    requests.push(rec);
    const fault = takeFault(req);
    if (fault && 'status' in fault) {
      rec.status = fault.status;
      rec.fault = `status ${fault.status}`;
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) });
      res.end(JSON.stringify({ errors: [{ code: fault.code ?? 'TOOMANYREQUESTS', message: 'injected by test proxy' }] }));
      return;
    }
    if (fault && 'redirectTo' in fault) {
      rec.status = 307;
      rec.fault = 'redirect';
      req.resume();
      res.writeHead(307, { location: fault.redirectTo + (req.url ?? '/') }).end();
      return;
    }
    const headers = { ...req.headers };
    if (opts.injectBasicAuth) headers.authorization = 'Basic ' + Buffer.from(`${opts.injectBasicAuth.username}:${opts.injectBasicAuth.password}`).toString('base64');
    const upReq = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (upRes) => {
      const upHeaders = { ...upRes.headers } as Record<string, unknown>;
      const status = rewrite(req, upRes.statusCode ?? 502, upHeaders);
      rec.status = status;
      res.writeHead(status, upHeaders as Record<string, string>);
      if (fault && ('trickleBytesPerSec' in fault || 'stallAfterBytes' in fault)) {
        rec.fault = 'trickleBytesPerSec' in fault ? `trickle ${fault.trickleBytesPerSec}/s` : `stall after ${fault.stallAfterBytes}`;
        void upRes.toArray().then((parts: Buffer[]) => {
          const body = Buffer.concat(parts);
          if ('stallAfterBytes' in fault) { res.write(body.subarray(0, fault.stallAfterBytes)); return; } // and nothing more, connection open
          let at = 0;
          const t = setInterval(() => {
            if (at >= body.length || res.destroyed) { clearInterval(t); timers.delete(t); res.end(); return; }
            res.write(body.subarray(at, at += fault.trickleBytesPerSec));
          }, 1000);
          timers.add(t);
        });
        return;
      }
      if (fault && 'dropAfterBytes' in fault) {
        rec.fault = `drop after ${fault.dropAfterBytes}`;
        let sent = 0;
        upRes.on('data', (chunk: Buffer) => {
          if (sent >= fault.dropAfterBytes) return;
          const part = chunk.subarray(0, fault.dropAfterBytes - sent);
          sent += part.length;
          res.write(part);
          if (sent >= fault.dropAfterBytes) {
            upRes.destroy();
            // Let the bytes leave before cutting the connection.
            setTimeout(() => res.socket?.destroy(), 20);
          }
        });
        return;
      }
      if (fault && 'corruptBody' in fault) {
        rec.fault = 'corrupt';
        let first = true;
        upRes.on('data', (chunk: Buffer) => {
          if (first && chunk.length > 0) {
            const copy = Buffer.from(chunk);
            copy[0] ^= 0xff;
            res.write(copy);
            first = false;
          } else res.write(chunk);
        });
        upRes.on('end', () => res.end());
        return;
      }
      upRes.pipe(res);
    });
    upReq.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(upReq);
  }

  const server: Server = createServer(handle);
  const hostname = opts.hostname ?? '127.0.0.1';
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `${hostname}:${port}`,
    url: `http://${hostname}:${port}`,
    requests,
    addFault: (rule) => rules.push({ ...rule, left: rule.times ?? 1 }),
    stop: async () => { for (const t of timers) clearInterval(t); server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}

/**
 * For the enclosing describe (its before/after hooks): a registry holding the busybox fixture as
 * `library/busybox:1`, and a recording proxy in front of it; read them inside the tests.
 */
export function busyboxBehindProxy(): { readonly registry: TestRegistry; readonly proxy: RecordingProxy } {
  let registry: TestRegistry | undefined;
  let proxy: RecordingProxy | undefined;
  before(async () => {
    registry = await startRegistry();
    await pushFixture(registry, 'multiarch', 'library/busybox:1');
    proxy = await startProxy(registry.url);
  });
  after(async () => { await proxy?.stop(); await registry?.stop(); });
  return { get registry() { return registry!; }, get proxy() { return proxy!; } };
}
