// Test fixture: a recording HTTP proxy in front of a registry. It counts requests (method, path,
// whether Authorization was sent) and injects faults a real network produces: an error status with
// Retry-After, a connection dropped part-way through a body, a redirect to another host (as
// registries do for blob storage), or a corrupted body.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type Fault =
  | { status: number; retryAfter?: string }
  | { dropAfterBytes: number }
  | { redirectTo: string }
  | { corruptBody: true };

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
}

export async function startProxy(upstream: string, opts: ProxyOptions = {}): Promise<RecordingProxy> {
  const up = new URL(upstream);
  const rules: Array<FaultRule & { left: number }> = [];
  const requests: ProxyRecord[] = [];

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
    const rec: ProxyRecord = { method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization, range: req.headers.range, status: 0 };
    requests.push(rec);
    const fault = takeFault(req);
    if (fault && 'status' in fault) {
      rec.status = fault.status;
      rec.fault = `status ${fault.status}`;
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...(fault.retryAfter ? { 'retry-after': fault.retryAfter } : {}) });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"injected by test proxy"}]}');
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
      rec.status = upRes.statusCode ?? 0;
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
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
    stop: async () => { server.closeAllConnections(); await new Promise((r) => server.close(r)); },
  };
}
