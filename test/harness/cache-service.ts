// A local stand-in of the GitHub Actions cache service v2 for tests. The three Twirp JSON routes
// that @actions/cache calls are ours (in-memory entries); the signed URLs point at a real Azure Blob
// implementation, Azurite, so the Azure SDK inside @actions/cache runs unmodified.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  BlobSASPermissions, BlobServiceClient, type ContainerClient, generateBlobSASQueryParameters, StorageSharedKeyCredential,
} from '@azure/storage-blob';
import tarStream from 'tar-stream';

/** Azurite's documented development account (public, the same on every machine). */
const AZURITE_ACCOUNT = 'devstoreaccount1';
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const CONTAINER = 'actions-cache';
const SERVICE_PATH = '/twirp/github.actions.results.api.v1.CacheService/';

/**
 * none: behave like the real service. error: every Twirp call answers 500 (the toolkit retries).
 * throttle: every Twirp call answers 429 with Retry-After (the toolkit retries).
 * hang: every Twirp call is accepted and never answered. truncate: downloads announce the whole
 * archive and then stop half-way (the connection closes). trickle: downloads send 1 byte a second.
 * corrupt: downloads serve a copy of the
 * archive where one byte is flipped inside the first `blobs/sha256/` file (layers entries) or the
 * first file under `mounts/<id>/` (mounts entries); the archive itself stays valid, so only a
 * digest check can notice.
 */
export type CacheFault = 'none' | 'error' | 'throttle' | 'hang' | 'truncate' | 'trickle' | 'corrupt';

export interface CacheEntryInfo {
  key: string;
  version: string;
  scope: string;
  sizeBytes: number;
  /** Creation order (1, 2, …): restore-by-prefix picks the highest. */
  seq: number;
  finalized: boolean;
}

export interface CacheService {
  /** Variables the process running @actions/cache needs (merge into its environment). */
  env: Record<string, string>;
  entries(): CacheEntryInfo[];
  /** Twirp calls received, by method name, in order (for asserting what the client did). */
  calls(): string[];
  setFault(mode: CacheFault): void;
  stop(): Promise<void>;
}

interface Entry extends CacheEntryInfo { blob: string }

export async function startCacheService(opts: { scope?: string } = {}): Promise<CacheService> {
  const scope = opts.scope ?? 'refs/heads/main';
  const token = randomBytes(16).toString('hex');
  const azurite = await startAzurite();
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const container = new BlobServiceClient(`${azurite.url}/${AZURITE_ACCOUNT}`, credential).getContainerClient(CONTAINER);
  try {
    await container.create();
  } catch (err) {
    azurite.stop();
    throw err;
  }

  const entries: Entry[] = [];
  const calls: string[] = [];
  let fault: CacheFault = 'none';
  const front = await startDownloadFront(azurite.url, () => fault);
  let seq = 0;

  const signedUrl = (blob: string, permissions: string): string => {
    const sas = generateBlobSASQueryParameters({
      containerName: CONTAINER, blobName: blob, permissions: BlobSASPermissions.parse(permissions),
      startsOn: new Date(Date.now() - 60_000), expiresOn: new Date(Date.now() + 3600_000),
    }, credential).toString();
    const direct = `${container.getBlobClient(blob).url}?${sas}`;
    // Downloads go through our own front, where the truncate and trickle faults are applied.
    return permissions === 'r' ? direct.replace(azurite.url, front.url) : direct;
  };

  const routes: Record<string, (req: Record<string, unknown>) => Promise<[number, object]>> = {
    async CreateCacheEntry(req) {
      const key = String(req.key ?? '');
      const version = String(req.version ?? '');
      if (!key || !version) return twirpError(400, 'invalid_argument', 'key and version are required');
      if (entries.some((e) => e.key === key && e.version === version && e.scope === scope)) {
        // What the real service answers; @actions/cache turns it into "another job may be creating this cache".
        return twirpError(409, 'already_exists', 'cache entry with the same key, version, and scope already exists');
      }
      const blob = `${++seq}-${randomBytes(6).toString('hex')}`;
      entries.push({ key, version, scope, sizeBytes: 0, seq, finalized: false, blob });
      return [200, { ok: true, signed_upload_url: signedUrl(blob, 'cw') }];
    },
    async FinalizeCacheEntryUpload(req) {
      const entry = entries.find((e) => e.key === req.key && e.version === req.version && e.scope === scope && !e.finalized);
      if (!entry) return twirpError(404, 'not_found', 'cache entry not found');
      const props = await container.getBlobClient(entry.blob).getProperties().catch(() => undefined);
      if (!props) return [200, { ok: false, message: 'the uploaded archive was not found in blob storage' }];
      entry.sizeBytes = Number(req.size_bytes ?? props.contentLength ?? 0);
      entry.finalized = true;
      return [200, { ok: true, entry_id: String(entry.seq) }];
    },
    async GetCacheEntryDownloadURL(req) {
      const version = String(req.version ?? '');
      const live = entries.filter((e) => e.finalized && e.version === version && e.scope === scope).sort((a, b) => b.seq - a.seq);
      const restoreKeys = Array.isArray(req.restore_keys) ? req.restore_keys.map(String) : [];
      const match = live.find((e) => e.key === req.key)
        ?? restoreKeys.map((p) => live.find((e) => e.key === p) ?? live.find((e) => e.key.startsWith(p))).find((e) => e);
      if (!match) return [200, { ok: false }];
      let blob = match.blob;
      if (fault === 'corrupt') blob = await corruptCopy(container, match.blob);
      return [200, { ok: true, signed_download_url: signedUrl(blob, 'r'), matched_key: match.key }];
    },
  };

  const server = createServer((req, res) => {
    void handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, ...twirpError(500, 'internal', String(err)));
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.url?.startsWith(SERVICE_PATH) ? req.url.slice(SERVICE_PATH.length) : '';
    const body = Buffer.concat(await req.toArray()).toString();
    calls.push(method);
    if (fault === 'hang') return; // accepted, never answered
    if (fault === 'error') return send(res, ...twirpError(500, 'internal', 'injected failure'));
    if (fault === 'throttle') {
      res.setHeader('retry-after', '1');
      return send(res, ...twirpError(429, 'resource_exhausted', 'injected rate limit'));
    }
    if (req.headers.authorization !== `Bearer ${token}`) return send(res, ...twirpError(401, 'unauthenticated', 'bad token'));
    const route = routes[method];
    if (req.method !== 'POST' || !route) return send(res, ...twirpError(404, 'bad_route', `no route ${req.method} ${req.url}`));
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return send(res, ...twirpError(400, 'malformed', 'body is not JSON'));
    }
    send(res, ...(await route(parsed)));
  }
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    env: {
      ACTIONS_CACHE_SERVICE_V2: 'True',
      ACTIONS_RESULTS_URL: url,
      ACTIONS_RUNTIME_TOKEN: token,
      GITHUB_SERVER_URL: 'https://github.com', // not GHES: GHES would force the v1 protocol
    },
    entries: () => entries.map(({ blob: _blob, ...info }) => ({ ...info })),
    calls: () => [...calls],
    setFault(mode) { fault = mode; },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      await front.stop();
      await azurite.stop();
    },
  };
}

function twirpError(status: number, code: string, msg: string): [number, object] {
  return [status, { code, msg }];
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A pass-through in front of Azurite for downloads, where `fault()` may cut or slow the body. */
async function startDownloadFront(upstream: string, fault: () => CacheFault): Promise<{ url: string; stop(): Promise<void> }> {
  const up = new URL(upstream);
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    const mode = fault();
    const upReq = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (mode !== 'truncate' && mode !== 'trickle') return void upRes.pipe(res);
      void upRes.toArray().then((parts: Buffer[]) => {
        const body = Buffer.concat(parts);
        if (mode === 'truncate') {
          res.write(body.subarray(0, body.length >> 1));
          const t = setTimeout(() => res.socket?.destroy(), 20);
          timers.add(t);
          return;
        }
        let at = 0;
        const t = setInterval(() => {
          if (at >= body.length || res.destroyed) { clearInterval(t); timers.delete(t); res.end(); return; }
          res.write(body.subarray(at, ++at));
        }, 1000);
        timers.add(t);
      });
    });
    upReq.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
    req.pipe(upReq);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async stop() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

/** Azurite blob service on a free port, in memory, in its own scratch directory. */
async function startAzurite(): Promise<{ url: string; stop(): Promise<void> }> {
  const cwd = await mkdtemp(join(tmpdir(), 'slipway-azurite-'));
  const bin = resolve(import.meta.dirname, '../../node_modules/.bin/azurite-blob');
  const child: ChildProcess = spawn(bin, [
    '--blobHost', '127.0.0.1', '--blobPort', '0', '--inMemoryPersistence', '--skipApiVersionCheck', '--loose',
    '--disableTelemetry', '--silent',
  ], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000).unref())]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(cwd, { recursive: true, force: true });
  };
  let output = '';
  const url = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`azurite did not start within 20 s: ${output}`)), 20_000);
    const onData = (b: Buffer): void => {
      output += b.toString();
      const m = /listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) { clearTimeout(timer); ok(m[1]); }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => { clearTimeout(timer); fail(new Error(`azurite exited (${code}): ${output}`)); });
  }).catch(async (err) => { await stop(); throw err; });
  return { url, stop };
}

/**
 * A copy of the archive `blob` with one byte flipped in its first blob or cache-mount file:
 * decompressed with zstd, rewritten entry by entry, compressed again, uploaded next to the original.
 */
const damageable = /(^|\/)(blobs\/sha256\/[a-f0-9]{64}|mounts\/[^/]+\/.+)$/;

async function corruptCopy(container: ContainerClient, blob: string): Promise<string> {
  const original = await container.getBlobClient(blob).downloadToBuffer();
  const tar = await zstd(['-d', '-c'], original);
  const extract = tarStream.extract();
  const pack = tarStream.pack();
  const packed: Buffer[] = [];
  pack.on('data', (b: unknown) => void packed.push(b as Buffer));
  const packEnded = new Promise<void>((ok, fail) => { pack.once('end', () => ok()); pack.once('error', (e: unknown) => fail(e)); });
  let flipped = false;
  Readable.from([tar]).pipe(extract);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const data = Buffer.concat(chunks);
    const header = entry.header;
    if (!flipped && header.type === 'file' && damageable.test(header.name) && data.length > 0) {
      data[data.length >> 1] ^= 0xff;
      flipped = true;
    }
    await new Promise<void>((ok, fail) => {
      const done = (err?: Error | null): void => (err ? fail(err) : ok());
      if (header.type === 'file') pack.entry({ ...header, pax: undefined }, data, done);
      else pack.entry({ ...header, pax: undefined }, done);
    });
  }
  pack.finalize();
  await packEnded;
  const corrupt = await zstd(['-c'], Buffer.concat(packed));
  if (!flipped) throw new Error(`corrupt fault: archive ${blob} has no blob or cache-mount file to damage`);
  const name = `${blob}-corrupt`;
  await container.getBlockBlobClient(name).uploadData(corrupt);
  return name;
}

async function zstd(args: string[], input: Buffer): Promise<Buffer> {
  const child = spawn('zstd', ['-q', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = child.stdout.toArray();
  const err = child.stderr.toArray();
  child.stdin.end(input);
  const code = await new Promise<number | null>((ok) => child.once('close', ok));
  if (code !== 0) throw new Error(`zstd ${args.join(' ')} failed (${code}): ${Buffer.concat(await err).toString()}`);
  return Buffer.concat(await out);
}
