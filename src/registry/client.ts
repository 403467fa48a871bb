// Pull and push of manifests and blobs over the distribution API. Every byte read is verified
// against its digest; a broken blob download resumes with a Range request; uploads HEAD first,
// mount across repositories of one registry, and go up monolithic (small) or in chunks (large).
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import {
  hasherFor, hostPlatform, isDigest, formatPlatform, isIndexMediaType, manifestAccept, normalizePlatform, platformMatches, sha256,
  type Descriptor, type ImageConfig, type Index, type Manifest, type Platform,
} from '../oci/index.ts';
import { selectPlatform } from './platforms.ts';
import { manifestTarget, withTarget, type Reference } from './reference.ts';
import { Transport, backoffMs, responseHeader, sleep, type SendResponse, type TransportOptions } from './transport.ts';
import { ContentMismatchError, blobPath, cancelUpload, openUpload, pushBlob, scope, stageBlob, stageGrowingBlob, type OpenedUpload, type PushResult, type StagedUpload } from './upload.ts';

export type { PushResult } from './upload.ts';

export interface RegistryClientOptions extends TransportOptions {
  /** Blobs up to this size go up in one PUT; larger ones in PATCH chunks. Default 32 MiB. */
  monolithicMaxBytes?: number;
  /** Size of one PATCH chunk. Default 32 MiB. */
  chunkBytes?: number;
  /** Blob transfers in flight at once (copy). Default 4. */
  concurrency?: number;
}

export interface ManifestData {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

export interface PlatformImage {
  /** The reference pinned to the platform manifest's digest. */
  ref: Reference;
  manifestDigest: string;
  manifest: Manifest;
  manifestBytes: Buffer;
  mediaType: string;
  config: ImageConfig;
  configBytes: Buffer;
  /** Digest of the index the manifest was chosen from, if there was one. */
  indexDigest?: string;
}


const maxManifestBytes = 4 << 20;


function mediaTypeOf(res: SendResponse, bytes: Buffer): string {
  const ct = responseHeader(res, 'content-type')?.split(';')[0].trim();
  if (ct && ct !== 'application/json' && ct !== 'text/plain' && ct !== 'application/octet-stream') return ct;
  try {
    return (JSON.parse(bytes.toString()) as { mediaType?: string }).mediaType ?? ct ?? '';
  } catch {
    return ct ?? '';
  }
}

async function readLimited(body: AsyncIterable<Uint8Array>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) throw new UserError(`${what} is larger than ${limit} bytes; refusing to read it`);
    parts.push(Buffer.from(c));
  }
  return Buffer.concat(parts);
}

export class RegistryClient {
  readonly transport: Transport;
  private readonly monolithicMax: number;
  private readonly chunkBytes: number;
  readonly concurrency: number;
  private readonly retries: number;

  constructor(opts: RegistryClientOptions = {}) {
    this.transport = new Transport(opts);
    this.monolithicMax = opts.monolithicMaxBytes ?? 32 << 20;
    this.chunkBytes = opts.chunkBytes ?? 32 << 20;
    this.concurrency = opts.concurrency ?? 4;
    this.retries = opts.retries ?? 4;
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** GET a manifest or index by tag or digest, verified against the digest asked for and the one served. */
  async getManifest(ref: Reference): Promise<ManifestData> {
    return (await this.again(() => this.getManifestOnce(ref, false)))!;
  }

  /** GET a manifest or index that may not be there: undefined on 404, in one request (no HEAD first). */
  findManifest(ref: Reference): Promise<ManifestData | undefined> {
    return this.again(() => this.getManifestOnce(ref, true));
  }

  private async getManifestOnce(ref: Reference, missingOk: boolean): Promise<ManifestData | undefined> {
    const target = manifestTarget(ref);
    const res = await this.transport.send({
      registry: ref.registry, method: 'GET', path: `/v2/${ref.repository}/manifests/${target}`, scopes: [scope(ref)],
      headers: { accept: manifestAccept }, accept: [200, 404],
    });
    if (res.status === 404) {
      await res.body.dump();
      if (missingOk) return undefined;
      throw new UserError(`image not found: ${ref.toString()} (the registry has no manifest for ${ref.digest ? 'digest' : 'tag'} "${target}")`,
        { hint: 'check the repository name and tag; tags are case-sensitive' });
    }
    const bytes = await readLimited(res.body, maxManifestBytes, `manifest ${ref.toString()}`);
    const served = responseHeader(res, 'docker-content-digest');
    let digest = sha256(bytes);
    for (const [expected, source] of [[ref.digest, 'the reference'], [served, 'the registry\'s Docker-Content-Digest']] as const) {
      if (!expected || !isDigest(expected)) continue;
      const got = hasherOf(expected, bytes);
      if (got !== expected) {
        throw new ContentMismatchError(`manifest of ${ref.toString()} does not match ${source}: expected ${expected}, got ${got}`, 'the registry or a proxy altered the content; nothing was used');
      }
      if (expected === ref.digest) digest = expected;
    }
    return { digest, mediaType: mediaTypeOf(res, bytes), bytes };
  }

  /** HEAD a manifest: its digest when present, undefined when not. */
  async headManifest(ref: Reference): Promise<string | undefined> {
    const res = await this.transport.send({
      registry: ref.registry, method: 'HEAD', path: `/v2/${ref.repository}/manifests/${manifestTarget(ref)}`, scopes: [scope(ref)],
      headers: { accept: manifestAccept }, accept: [200, 404],
    });
    await res.body.dump();
    return res.status === 200 ? responseHeader(res, 'docker-content-digest') ?? '' : undefined;
  }

  /**
   * The image for one platform (host platform by default): through an index if the reference
   * names one, with its config blob fetched and verified. A single-platform image of another
   * platform is refused, unless `anySinglePlatform` (a build's FROM: BuildKit takes it and warns).
   */
  async resolveImage(ref: Reference, platform?: Platform, opts: { anySinglePlatform?: boolean } = {}): Promise<PlatformImage> {
    const want = normalizePlatform(platform ?? hostPlatform());
    let top = await this.getManifest(ref);
    let indexDigest: string | undefined;
    if (isIndexMediaType(top.mediaType)) {
      indexDigest = top.digest;
      const index = JSON.parse(top.bytes.toString()) as Index;
      const match = selectPlatform(index, want, ref);
      top = await this.getManifest(withTarget(ref, { digest: match.digest }));
      if (top.digest !== match.digest) throw new UserError(`manifest ${match.digest} of ${ref.toString()} came back with digest ${top.digest}`);
    }
    if (isIndexMediaType(top.mediaType)) throw new UserError(`${ref.toString()}: an index points at another index; nested indexes are not supported`);
    const manifest = JSON.parse(top.bytes.toString()) as Manifest;
    if (!manifest.config?.digest) throw new UserError(`${ref.toString()}: manifest has no config (media type ${top.mediaType || 'unknown'}); is it a schema-1 or artifact manifest?`);
    const configBytes = await this.fetchBlobBytes(ref, manifest.config, 16 << 20);
    const config = JSON.parse(configBytes.toString()) as ImageConfig;
    if (!indexDigest && platform && !opts.anySinglePlatform && config.os && !platformMatches(want, { os: config.os, architecture: config.architecture, variant: config.variant })) {
      throw new UserError(`${ref.toString()} is a single-platform image for ${formatPlatform(normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant }))}, not ${formatPlatform(want)}`,
        { hint: 'choose the platform the image was built for, or an image with an index of platforms' });
    }
    return {
      ref: withTarget(ref, { digest: top.digest }), manifestDigest: top.digest, manifest, manifestBytes: top.bytes, mediaType: top.mediaType,
      config, configBytes, indexDigest,
    };
  }

  /** HEAD a blob; `forPush` asks with the push token the upload that may follow needs anyway. */
  async hasBlob(ref: Reference, digest: string, opts: { forPush?: boolean } = {}): Promise<boolean> {
    const res = await this.transport.send({ registry: ref.registry, method: 'HEAD', path: blobPath(ref, digest), scopes: [scope(ref, opts.forPush)], accept: [200, 404] });
    await res.body.dump();
    return res.status === 200;
  }

  /**
   * A blob as a stream that fails (with a UserError) unless every byte matches `desc.digest` and
   * `desc.size`. A connection that breaks mid-way is resumed with `Range` up to `retries` times.
   */
  fetchBlob(ref: Reference, desc: Descriptor): Readable {
    const transport = this.transport;
    const retries = this.retries;
    async function* chunks(): AsyncGenerator<Buffer> {
      const hasher = hasherFor(desc.digest);
      let got = 0;
      for (let attempt = 0; ; ) {
        const res = await transport.send({
          registry: ref.registry, method: 'GET', path: blobPath(ref, desc.digest), scopes: [scope(ref)],
          headers: got > 0 ? { range: `bytes=${got}-` } : {}, accept: [200, 206, 404],
        });
        if (res.status === 404) {
          await res.body.dump();
          throw new UserError(`blob ${desc.digest} of ${ref.toString()} is missing from the registry`);
        }
        let skip = got > 0 && res.status === 200 ? got : 0; // the server ignored Range: drop what we have
        try {
          for await (const c of res.body as AsyncIterable<Buffer>) {
            let chunk = c;
            if (skip > 0) {
              const n = Math.min(skip, chunk.length);
              skip -= n;
              chunk = chunk.subarray(n);
              if (chunk.length === 0) continue;
            }
            got += chunk.length;
            if (got > desc.size) throw new UserError(`blob ${desc.digest} of ${ref.toString()} is longer than its descriptor says (${desc.size} bytes)`);
            hasher.update(chunk);
            yield chunk;
          }
        } catch (err) {
          if (err instanceof UserError || attempt >= retries) throw err;
          attempt++;
          await sleep(backoffMs(attempt));
          continue;
        }
        if (got < desc.size && attempt < retries) {
          attempt++;
          continue;
        }
        break;
      }
      const digest = hasher.digest();
      if (got !== desc.size || digest !== desc.digest) {
        throw new ContentMismatchError(`blob ${desc.digest} of ${ref.toString()} failed verification: got ${got} bytes with digest ${digest}, expected ${desc.size} bytes`,
          'the registry or a proxy served corrupt content; nothing built on it was pushed');
      }
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /** A small blob whole; one that fails verification is fetched again (bounded). */
  async fetchBlobBytes(ref: Reference, desc: Descriptor, limit = 64 << 20): Promise<Buffer> {
    if (desc.size > limit) throw new UserError(`blob ${desc.digest} is ${desc.size} bytes, more than the ${limit} expected here`);
    return this.again(() => readLimited(this.fetchBlob(ref, desc), limit, `blob ${desc.digest}`));
  }

  /** Runs `read` again after a verification failure or a broken or slow body, up to `retries` times. */
  private async again<T>(read: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await read();
      } catch (err) {
        // Statuses were already retried by the transport; here only what it cannot see.
        const again = err instanceof ContentMismatchError || !(err instanceof UserError);
        if (!again || attempt >= this.retries) throw err;
        await sleep(backoffMs(attempt));
      }
    }
  }

  /**
   * Makes `desc` present in `ref`'s repository: nothing if it exists, a cross-repository mount if
   * one of `mountFrom` (same registry) has it, else an upload of `open()`'s bytes (see upload.ts).
   * `unasked`: upload without asking first whether the blob is there (small, likely new blobs);
   * `opened`: an upload session started earlier (openUpload), used instead of starting one;
   * `staged`: the blob sent ahead (stageBlob), so the push is its committing PUT.
   */
  pushBlob(ref: Reference, desc: Descriptor, open: () => Readable, opts: { mountFrom?: Reference[]; unasked?: boolean; opened?: Promise<OpenedUpload | undefined>; staged?: Promise<StagedUpload | undefined>; sourceVerified?: boolean } = {}): Promise<PushResult> {
    return pushBlob(this.transport, ref, desc, open, { ...this.uploadSettings, ...opts });
  }

  /** Sends a blob's bytes ahead of its push, unpublished until pushBlob commits them (see upload.ts). */
  stageBlob(ref: Reference, desc: Descriptor, open: () => Readable, opts: { mountFrom?: Reference[] } = {}): Promise<StagedUpload | undefined> {
    return stageBlob(this.transport, ref, desc, open, { ...this.uploadSettings, ...opts });
  }

  /** Sends the bytes of a blob still being written ahead of its push; `final` is its descriptor once written (see upload.ts). */
  stageGrowingBlob(ref: Reference, open: () => Readable, final: Promise<Descriptor>): Promise<StagedUpload | undefined> {
    return stageGrowingBlob(this.transport, ref, open, final, this.uploadSettings);
  }

  private get uploadSettings(): { monolithicMax: number; chunkBytes: number; retries: number } {
    return { monolithicMax: this.monolithicMax, chunkBytes: this.chunkBytes, retries: this.retries };
  }

  /** Starts an upload session for a blob known later (undefined when the registry refuses now). */
  openUpload(ref: Reference): Promise<OpenedUpload | undefined> {
    return openUpload(this.transport, ref);
  }

  /** Ends an upload session that went unused (an openUpload's, or a staged blob's). */
  cancelUpload(ref: Reference, opened: OpenedUpload | { location: string }): Promise<void> {
    return cancelUpload(this.transport, ref, opened.location);
  }

  /** PUTs manifest bytes under `ref`'s tag (or digest); returns the digest of the bytes. */
  async putManifest(ref: Reference, bytes: Buffer, mediaType: string): Promise<string> {
    const digest = sha256(bytes);
    if (ref.digest && ref.digest !== digest) throw new UserError(`cannot push manifest with digest ${digest} to ${ref.toString()}: the reference pins another digest`);
    const res = await this.transport.send({
      registry: ref.registry, method: 'PUT', path: `/v2/${ref.repository}/manifests/${ref.tag ?? digest}`, scopes: [scope(ref, true)],
      headers: { 'content-type': mediaType }, body: bytes, accept: [201, 202, 204],
    });
    await res.body.dump();
    const stored = responseHeader(res, 'docker-content-digest');
    if (stored && stored !== digest) throw new UserError(`registry ${ref.registry} stored manifest ${digest} as ${stored}`);
    return digest;
  }

  /**
   * DELETE of a manifest by tag or digest. Resolves to true when the registry removed it, false
   * when it refuses or does not support the request (deletion disabled, tag deletion unknown).
   */
  async deleteManifest(ref: Reference): Promise<boolean> {
    const res = await this.transport.send({
      registry: ref.registry, method: 'DELETE', path: `/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag}`,
      scopes: [`repository:${ref.repository}:pull,push,delete`], accept: [200, 202, 204, 400, 403, 404, 405, 501],
    });
    await res.body.dump();
    return res.status < 300;
  }
}


function hasherOf(digest: string, bytes: Buffer): string {
  const h = hasherFor(digest);
  h.update(bytes);
  return h.digest();
}
