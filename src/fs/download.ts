// ADD <url>: download to a file with a timeout, verify `--checksum`, and describe it as BuildKit
// does — name from Content-Disposition or the URL path, mode 0600, mtime from Last-Modified.
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { UserError } from '../errors.ts';
import { digestMeter } from '../oci/index.ts';
import { fileTree, type SourceTree } from './tree.ts';

export interface RemoteFile {
  name: string;
  path: string;
  size: number;
  mtime: number;
  digest: string;
  /** A one-file source tree for planCopy (source name = `name`). */
  tree: SourceTree;
  cleanup(): Promise<void>;
}

export interface FetchOptions {
  /** `sha256:<hex>` from `ADD --checksum`. */
  checksum?: string;
  /** mtime when the server sends no Last-Modified (BuildKit keeps the download time). */
  fallbackMtime: number;
  timeoutMs?: number;
  dir?: string;
}

function nameFrom(url: URL, disposition: string | null): string {
  const m = disposition && /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  const fromHeader = m ? posix.basename(decodeURIComponent(m[1])) : '';
  if (fromHeader && fromHeader !== '.' && fromHeader !== '..') return fromHeader;
  const base = posix.basename(decodeURIComponent(url.pathname));
  return base && base !== '/' && base !== '..' && base !== '.' ? base : '__unnamed__';
}

export async function fetchRemote(url: string, opts: FetchOptions): Promise<RemoteFile> {
  let u: URL;
  try { u = new URL(url); } catch { throw new UserError(`ADD: invalid URL ${JSON.stringify(url)}`); }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UserError(`ADD: unsupported URL scheme ${u.protocol} in ${url}`, { hint: 'use http:// or https://' });
  if (opts.checksum !== undefined && !/^sha256:[a-f0-9]{64}$/.test(opts.checksum)) {
    throw new UserError(`ADD --checksum=${opts.checksum} is not a sha256 digest`, { hint: 'write --checksum=sha256:<64 hex digits>' });
  }
  const res = await fetch(u, { signal: AbortSignal.timeout(opts.timeoutMs ?? 300_000), redirect: 'follow' }).catch((e: Error) => {
    throw new UserError(`ADD: failed to download ${url}: ${e.message}`, { cause: e });
  });
  if (!res.ok || !res.body) throw new UserError(`ADD: failed to download ${url}: HTTP ${res.status}`);
  const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'slipway-url-'));
  const name = nameFrom(u, res.headers.get('content-disposition'));
  const path = join(dir, 'download');
  const measure = digestMeter();
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), measure.stream, createWriteStream(path));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw new UserError(`ADD: failed to download ${url}: ${(e as Error).message}`, { cause: e });
  }
  const { digest, size } = measure.result();
  if (opts.checksum && digest !== opts.checksum) {
    await rm(dir, { recursive: true, force: true });
    throw new UserError(`ADD: checksum of ${url} is ${digest}, expected ${opts.checksum}`, { hint: 'the file changed on the server, or the --checksum value is wrong' });
  }
  const lm = res.headers.get('last-modified');
  const parsed = lm ? Date.parse(lm) : NaN;
  const mtime = Number.isNaN(parsed) ? opts.fallbackMtime : Math.floor(parsed / 1000);
  const tree = fileTree(name, { content: { path }, size, mode: 0o600, mtime }, url);
  return { name, path, size, mtime, digest, tree, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
