// Test fixture: the OCI 1.1 referrers API in front of a real registry that lacks it (CNCF
// distribution 2.8). Every request is passed through; a manifest PUT whose body has a `subject`
// is remembered once the registry stored it, and answered with the `OCI-Subject` header as the
// distribution spec asks of a registry with the API; `GET /v2/<name>/referrers/<digest>` answers
// with the image index of what was remembered (filtered by `?artifactType=`).
import { createHash } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

export interface ReferrersApi {
  host: string;
  /** Referrers list requests answered (name@digest). */
  listed: string[];
  stop(): Promise<void>;
}

interface Known { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }

function body(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

export async function startReferrersApi(upstream: string): Promise<ReferrersApi> {
  const up = new URL(upstream);
  const bySubject = new Map<string, Known[]>();
  const listed: string[] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const list = /^\/v2\/(.+)\/referrers\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && list) {
      listed.push(`${list[1]}@${list[2]}`);
      const want = url.searchParams.get('artifactType');
      const manifests = (bySubject.get(`${list[1]}@${list[2]}`) ?? []).filter((m) => !want || m.artifactType === want);
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', ...(want ? { 'oci-filters-applied': 'artifactType' } : {}) });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
      return;
    }
    const payload = await body(req);
    const put = req.method === 'PUT' ? /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname) : null;
    const headers = { ...req.headers };
    const upstreamRes = await new Promise<IncomingMessage>((resolve, reject) => {
      const r = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, resolve);
      r.on('error', reject);
      r.end(payload);
    });
    const extra: Record<string, string> = {};
    if (put && upstreamRes.statusCode === 201) {
      try {
        const doc = JSON.parse(payload.toString('utf8')) as { mediaType?: string; artifactType?: string; config?: { mediaType: string }; subject?: { digest: string }; annotations?: Record<string, string> };
        if (doc.subject) {
          const digest = 'sha256:' + createHash('sha256').update(payload).digest('hex');
          const known: Known = {
            mediaType: doc.mediaType ?? String(req.headers['content-type']), digest, size: payload.length,
            artifactType: doc.artifactType ?? doc.config?.mediaType, ...(doc.annotations ? { annotations: doc.annotations } : {}),
          };
          const key = `${put[1]}@${doc.subject.digest}`;
          const all = bySubject.get(key) ?? [];
          if (!all.some((k) => k.digest === digest)) all.push(known);
          bySubject.set(key, all);
          extra['oci-subject'] = doc.subject.digest;
        }
      } catch { /* not JSON: nothing to remember */ }
    }
    res.writeHead(upstreamRes.statusCode ?? 502, { ...upstreamRes.headers, ...extra });
    upstreamRes.pipe(res);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => { res.writeHead(502).end(String(e)); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    listed,
    stop: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
