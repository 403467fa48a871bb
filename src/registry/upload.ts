// Blob uploads as registries really answer them. HEAD first; a cross-repository mount where another
// repository of the same registry has the blob (a refused mount falls back to an upload); a small
// blob in one monolithic PUT; a larger one in one streamed PATCH followed by the PUT with the digest,
// and PATCH chunks only when the registry asks for them (OCI-Chunk-Min-Length). 201 and 202 are the
// same "accepted"; a Range that does not cover what was sent, or a final digest that differs, is a
// failed upload. A 5xx, a broken or slow connection, or a source that fails its digest check
// restarts the whole upload (bounded, with backoff honouring Retry-After); bytes that do not hash to
// the descriptor's digest are never committed.
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { hasherFor, type Descriptor } from '../oci/index.ts';
import type { Reference } from './reference.ts';
import { TransientError, backoffMs, responseHeader, sleep, type SendResponse, type Transport } from './transport.ts';

export interface UploadSettings {
  /** Blobs up to this size go up in one PUT. */
  monolithicMax: number;
  /** PATCH chunk size where the registry requires chunks (at least its minimum). */
  chunkBytes: number;
  /** Restarts of a failed upload after the first attempt. */
  retries: number;
  /**
   * The stream fails before its end when its bytes do not match the descriptor (a copy's source
   * verifies what it reads): its length is still counted, but it is not hashed a second time.
   */
  sourceVerified?: boolean;
}

export type PushResult = 'exists' | 'mounted' | 'uploaded';

/** The bytes handed to an upload did not hash to the descriptor: fetch them again, push nothing. */
export class ContentMismatchError extends TransientError {
  constructor(message: string, hint?: string) {
    super(message, { hint: hint ?? 'the source served corrupt content; nothing built on it was pushed' });
    this.name = 'ContentMismatchError';
  }
}

export function scope(ref: Reference, push = false): string {
  return `repository:${ref.repository}:${push ? 'pull,push' : 'pull'}`;
}

export function blobPath(ref: Reference, digest: string): string {
  return `/v2/${ref.repository}/blobs/${digest}`;
}

/** Worth another attempt: a transient answer, a verification failure, or a raw network error. */
export function isRetryable(err: unknown): boolean {
  return err instanceof TransientError || !(err instanceof UserError);
}

export function retryWaitMs(err: unknown, attempt: number): number {
  return err instanceof TransientError && err.retryAfterMs !== undefined ? err.retryAfterMs : backoffMs(attempt);
}

interface Started { location: string; chunkMin?: number }

class Uploader {
  private readonly t: Transport;
  private readonly ref: Reference;
  /** A placeholder for a blob still being written (stageGrowingBlob), whose descriptor comes at its end. */
  private readonly desc: Descriptor;
  private readonly growing: boolean;
  private readonly s: UploadSettings;
  /** Set when chunks were not acknowledged as sent: from then on one streamed PATCH. */
  private noChunks = false;
  /** How many bytes a growing blob's upload sent, to compare with its descriptor once it is known. */
  sentBytes: number | undefined;

  constructor(t: Transport, ref: Reference, desc: Descriptor | undefined, s: UploadSettings) {
    this.t = t;
    this.ref = ref;
    this.growing = desc === undefined;
    this.desc = desc ?? { mediaType: 'application/octet-stream', digest: `sha256:${'0'.repeat(64)}`, size: -1 };
    this.s = s;
  }

  private send(method: string, path: string, extra: { headers?: Record<string, string>; body?: Buffer | (() => Readable); accept: number[]; scopes?: string[] }): Promise<SendResponse> {
    return this.t.send({ registry: this.ref.registry, method, path, scopes: extra.scopes ?? [scope(this.ref, true)], headers: extra.headers, body: extra.body, accept: extra.accept, once: method === 'PATCH' || method === 'PUT' });
  }

  async has(): Promise<boolean> {
    const res = await this.send('HEAD', blobPath(this.ref, this.desc.digest), { accept: [200, 404] });
    await res.body.dump();
    return res.status === 200 && (responseHeader(res, 'content-length') === undefined || Number(responseHeader(res, 'content-length')) === this.desc.size);
  }

  async start(mountFrom: Reference[]): Promise<'mounted' | Started> {
    const { ref, desc } = this;
    for (const from of mountFrom) {
      if (from.registry !== ref.registry || from.repository === ref.repository) continue;
      // A registry without cross-repository mounting either starts a plain upload (202) or refuses.
      const res = await this.send('POST', `/v2/${ref.repository}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from.repository)}`, {
        scopes: [scope(ref, true), scope(from)], headers: { 'content-length': '0' }, accept: [201, 202, 400, 401, 403, 404, 405],
      });
      await res.body.dump();
      if (res.status === 201) return 'mounted';
      if (res.status === 202) return started(res);
    }
    return startUpload(this.t, ref);
  }

  async monolithic(at: Started, stream: Readable): Promise<void> {
    const bytes = await readAll(stream, this.s.monolithicMax, this.desc.digest);
    this.check(bytes.length, this.s.sourceVerified ? undefined : digestOf(this.desc.digest, [bytes]));
    await this.finish(at.location, bytes);
  }

  /** One PATCH with the whole body, hashed on the way out; where to PUT once the bytes matched. */
  async streamed(at: Started, stream: Readable): Promise<string> {
    const hasher = this.s.sourceVerified ? undefined : hasherFor(this.desc.digest);
    let sent = 0;
    const counted = Readable.from((async function* () {
      for await (const c of stream as AsyncIterable<Buffer>) {
        hasher?.update(c);
        sent += c.length;
        yield c;
      }
    })(), { objectMode: false });
    // A growing blob's length is known at its end: its bytes go chunked, as docker push sends them.
    const length: Record<string, string> = this.growing ? {} : { 'content-length': String(this.desc.size) };
    const res = await this.send('PATCH', at.location, {
      headers: { 'content-type': 'application/octet-stream', ...length }, body: () => counted, accept: [201, 202, 204],
    });
    await res.body.dump();
    this.check(sent, hasher?.digest());
    this.acknowledged(res, 0, sent);
    return locationOf(res, at.location);
  }

  /** PATCH chunks of at least the registry's minimum, each acknowledged by a Range that grows. */
  async chunked(at: Started, stream: Readable): Promise<string> {
    const size = Math.max(this.s.chunkBytes, at.chunkMin ?? 0);
    const hasher = this.s.sourceVerified ? undefined : hasherFor(this.desc.digest);
    let location = at.location;
    let offset = 0;
    for await (const chunk of rechunk(stream, size)) {
      hasher?.update(chunk);
      const res = await this.send('PATCH', location, {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
        body: chunk, accept: [201, 202, 204],
      });
      await res.body.dump();
      try {
        this.acknowledged(res, offset, chunk.length);
      } catch (err) {
        this.noChunks = true;
        throw err;
      }
      offset += chunk.length;
      location = locationOf(res, location);
    }
    this.check(offset, hasher?.digest());
    return location;
  }

  /** Sends the bytes without committing them: the location the committing PUT goes to. */
  sendData(at: Started, stream: Readable): Promise<string> {
    return at.chunkMin !== undefined && !this.noChunks ? this.chunked(at, stream) : this.streamed(at, stream);
  }

  async upload(at: Started, stream: Readable): Promise<void> {
    if (this.desc.size <= this.s.monolithicMax) return this.monolithic(at, stream);
    await this.commit(await this.sendData(at, stream));
  }

  /** Publishes the bytes an upload session holds (the PUT with the digest). */
  commit(location: string): Promise<void> {
    return this.finish(location, undefined);
  }

  cancel(location: string): Promise<void> {
    return cancelUpload(this.t, this.ref, location);
  }

  /** `digest` undefined: the source verifies the bytes (sourceVerified), only the size is checked here. */
  private check(size: number, digest: string | undefined): void {
    if (this.growing) {
      this.sentBytes = size;
      return;
    }
    if (size !== this.desc.size || (digest !== undefined && digest !== this.desc.digest)) {
      throw new ContentMismatchError(`blob ${this.desc.digest} to push does not match its descriptor (got ${size} bytes${digest === undefined ? '' : ` with digest ${digest}`}, expected ${this.desc.size} bytes)`);
    }
  }

  /** A Range answer must cover everything sent so far (ECR stops advancing it after two chunks). */
  private acknowledged(res: SendResponse, offset: number, length: number): void {
    const range = responseHeader(res, 'range');
    const m = range ? /^(?:bytes=)?0-(\d+)$/.exec(range.trim()) : undefined;
    if (range && (!m || Number(m[1]) !== offset + length - 1)) {
      throw new TransientError(`registry ${this.ref.registry} acknowledged ${range} of blob ${this.desc.digest} after ${offset + length} bytes were sent`);
    }
  }

  private async finish(location: string, body: Buffer | undefined): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', this.desc.digest);
    const res = await this.send('PUT', url.href, {
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) }, body, accept: [201, 202, 204],
    });
    await res.body.dump();
    const stored = responseHeader(res, 'docker-content-digest');
    if (stored !== undefined && stored !== this.desc.digest) throw new UserError(`registry ${this.ref.registry} stored blob ${this.desc.digest} as ${stored}`);
    if (stored === undefined && !(await this.has())) throw new TransientError(`registry ${this.ref.registry} accepted blob ${this.desc.digest} but does not have it (${this.desc.size} bytes)`);
  }
}

/**
 * Makes `desc` present in `ref`'s repository: nothing if it exists, a mount if one of `mountFrom`
 * has it, else an upload of `open()`'s bytes (called again for each restart). `unasked` skips the
 * existence check: for small blobs that are most likely new, one round trip less (uploading a blob
 * the registry has is harmless).
 */
export async function pushBlob(t: Transport, ref: Reference, desc: Descriptor, open: () => Readable, o: UploadSettings & { mountFrom?: Reference[]; unasked?: boolean; opened?: Promise<OpenedUpload | undefined>; staged?: Promise<StagedUpload | undefined> }): Promise<PushResult> {
  const up = new Uploader(t, ref, desc, o);
  const staged = await o.staged;
  if (staged?.kind === 'present') return 'exists';
  if (staged?.kind === 'sent') {
    try {
      await up.commit(staged.location);
      return 'uploaded';
    } catch {
      await up.cancel(staged.location); // the push starts over below, as if nothing was sent
    }
  } else if (!o.unasked && await up.has()) return 'exists';
  for (let attempt = 0; ; attempt++) {
    let at: Started | undefined;
    let stream: Readable | undefined;
    try {
      const opened = attempt === 0 ? await o.opened : undefined;
      const start = opened ?? await up.start(o.mountFrom ?? []);
      if (start === 'mounted') return 'mounted';
      at = start;
      stream = open();
      await up.upload(at, stream);
      return 'uploaded';
    } catch (err) {
      stream?.destroy();
      if (at) await up.cancel(at.location);
      if (!isRetryable(err) || attempt >= o.retries) throw err;
      await sleep(retryWaitMs(err, attempt));
    }
  }
}

/**
 * A blob sent ahead of its push (`stageBlob`): the registry had it already, or holds its bytes in
 * an upload session that only pushBlob's PUT publishes — a build that fails cancels it instead.
 */
export type StagedUpload = { kind: 'present' } | { kind: 'sent'; location: string };

/**
 * Sends `desc` to `ref`'s repository without publishing it: HEAD, a mount, else the upload's data
 * (one PATCH, or chunks where the registry asks for them) and not the PUT. Undefined when anything
 * fails: the push then does it all again and reports what fails.
 */
export async function stageBlob(t: Transport, ref: Reference, desc: Descriptor, open: () => Readable, o: UploadSettings & { mountFrom?: Reference[] }): Promise<StagedUpload | undefined> {
  const up = new Uploader(t, ref, desc, o);
  let at: Started | undefined;
  let stream: Readable | undefined;
  try {
    if (await up.has()) return { kind: 'present' };
    const start = await up.start(o.mountFrom ?? []);
    if (start === 'mounted') return { kind: 'present' };
    at = start;
    stream = open();
    return { kind: 'sent', location: await up.sendData(at, stream) };
  } catch {
    stream?.destroy();
    if (at) await up.cancel(at.location);
    return undefined;
  }
}

/**
 * Sends a blob still being written to `ref`'s repository without publishing it, as stageBlob does:
 * `open()` yields its bytes as they are written, up to its end, whose descriptor `final` then gives
 * and the bytes sent must match in length. Its digest is unknown while it is sent, so there is no HEAD or
 * mount first (a blob the registry has already is sent again, harmlessly). Undefined when anything fails.
 */
export async function stageGrowingBlob(t: Transport, ref: Reference, open: () => Readable, final: Promise<Descriptor>, o: UploadSettings): Promise<StagedUpload | undefined> {
  // Not hashed again on the way out: the writer hashed these very bytes, and the registry checks
  // the digest at the committing PUT (one that fails starts the push over, verified).
  const up = new Uploader(t, ref, undefined, { ...o, sourceVerified: true });
  let at: Started | undefined;
  let stream: Readable | undefined;
  try {
    at = await startUpload(t, ref);
    stream = open();
    const location = await up.sendData(at, stream);
    const desc = await final;
    if (up.sentBytes !== desc.size) throw new ContentMismatchError(`blob ${desc.digest} sent as it was written does not match it (${up.sentBytes} bytes, not ${desc.size})`);
    return { kind: 'sent', location };
  } catch {
    stream?.destroy();
    if (at) await up.cancel(at.location);
    return undefined;
  }
}

/** An upload session started before its blob is known (`openUpload`), for pushBlob's `opened`. */
export type OpenedUpload = Started;

/**
 * Starts an upload session in `ref`'s repository now, for a blob that will be known later (a
 * provenance statement, made as the build ends): its push then costs the PUT alone. Undefined when
 * the start fails (the push starts its own then, and reports what fails).
 */
export function openUpload(t: Transport, ref: Reference): Promise<OpenedUpload | undefined> {
  return startUpload(t, ref).catch(() => undefined);
}

/** A plain upload session in `ref`'s repository (no mount). */
async function startUpload(t: Transport, ref: Reference): Promise<Started> {
  const res = await t.send({ registry: ref.registry, method: 'POST', path: `/v2/${ref.repository}/blobs/uploads/`, scopes: [scope(ref, true)], headers: { 'content-length': '0' }, accept: [201, 202] });
  await res.body.dump();
  return started(res);
}

/** Ends an upload session (best effort: the registry purges abandoned uploads itself). */
export async function cancelUpload(t: Transport, ref: Reference, location: string): Promise<void> {
  try {
    const res = await t.send({ registry: ref.registry, method: 'DELETE', path: location, scopes: [scope(ref, true)], accept: [202, 204, 404, 400, 405] });
    await res.body.dump();
  } catch { /* best effort */ }
}

function started(res: SendResponse): Started {
  const location = responseHeader(res, 'location');
  if (!location) throw new UserError(`registry answered ${res.status} to an upload start without a Location header`);
  const min = Number(responseHeader(res, 'oci-chunk-min-length'));
  return { location: new URL(location, res.url).href, chunkMin: Number.isFinite(min) && min > 0 ? min : undefined };
}

function locationOf(res: SendResponse, previous: string): string {
  const loc = responseHeader(res, 'location');
  return loc ? new URL(loc, res.url).href : previous;
}

function digestOf(like: string, parts: Buffer[]): string {
  const h = hasherFor(like);
  for (const p of parts) h.update(p);
  return h.digest();
}

async function readAll(stream: Readable, limit: number, digest: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > limit) throw new ContentMismatchError(`blob ${digest} to push is larger than its descriptor says`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

async function* rechunk(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    parts.push(c);
    n += c.length;
    while (n >= size) {
      const all = Buffer.concat(parts);
      yield all.subarray(0, size);
      parts = [all.subarray(size)];
      n = all.length - size;
    }
  }
  if (n > 0) yield Buffer.concat(parts);
}
