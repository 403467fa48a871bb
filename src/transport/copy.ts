// Copy between any source and sink: blobs first, then each manifest, then the top. Bytes are kept
// (same digests) wherever the sink keeps manifests; a single-platform sink takes the platform asked
// for, or the host's, out of an index.
import { Readable } from 'node:stream';
import { UserError } from '../errors.ts';
import { boundedAll } from '../limit.ts';
import { hostPlatform, isIndexMediaType, normalizePlatform, type ImageConfig, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { selectPlatform } from '../registry/index.ts';
import type { ImageSink, ImageSource, ManifestBytes } from './types.ts';

export interface TransferOptions {
  platform?: Platform;
  log?: (line: string) => void;
}

export interface TransferResult {
  /** The digest the sink holds the top under (a docker archive's: the config digest). */
  digest: string;
  mediaType: string;
  manifests: number;
  /** Blobs by what the sink did with them ('exists', 'mounted', 'uploaded', 'written'). */
  blobs: Record<string, number>;
  /** Bytes sent as uploads (mounted and existing blobs not counted). */
  bytesUploaded: number;
}

/** Layers a registry keeps elsewhere (their descriptors' URLs): referenced, never copied, as skopeo does. */
const foreign = /foreign|nondistributable/;

async function readAll(stream: Readable, limit: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    n += (c as Buffer).length;
    if (n > limit) throw new UserError(`a config blob is larger than ${limit} bytes`);
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** The config of a manifest, read through its source (verified). */
export async function readConfig(src: ImageSource, manifest: Manifest): Promise<{ config: ImageConfig; bytes: Buffer }> {
  const bytes = await readAll(src.blob(manifest.config), 16 << 20);
  return { config: JSON.parse(bytes.toString()) as ImageConfig, bytes };
}

/** The image (not index) `src` names for `platform` (default: the host's when it is an index). */
export async function resolveManifest(src: ImageSource, platform: Platform | undefined): Promise<{ top: ManifestBytes; image: ManifestBytes; platform?: Platform }> {
  const top = await src.top();
  if (!isIndexMediaType(top.mediaType)) return { top, image: top };
  const d = selectPlatform(JSON.parse(top.bytes.toString()) as Index, platform ?? hostPlatform(), src.name);
  return { top, image: await src.manifest(d.digest, d.mediaType), platform: d.platform };
}

export async function transfer(src: ImageSource, sink: ImageSink, opts: TransferOptions = {}): Promise<TransferResult> {
  const result: TransferResult = { digest: '', mediaType: '', manifests: 0, blobs: { exists: 0, mounted: 0, uploaded: 0 }, bytesUploaded: 0 };
  const log = opts.log ?? (() => undefined);
  // Each blob once, a few at a time (a layer shared by platforms is not sent again).
  const done = new Set<string>();
  const copyManifest = async (m: ManifestBytes, platform: Platform | undefined) => {
    if (isIndexMediaType(m.mediaType)) throw new UserError(`${src.name}: an index inside an index (${m.digest}) cannot be copied here`);
    const manifest = JSON.parse(m.bytes.toString()) as Manifest;
    if (!platform && manifest.config && sink.wantsPlatform !== false) {
      const { config } = await readConfig(src, manifest);
      platform = normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant });
    }
    const all = [manifest.config, ...(manifest.layers ?? [])].filter((d) => d && !foreign.test(d.mediaType));
    const blobs = [...new Map(all.map((d) => [d.digest, d])).values()].filter((d) => !done.has(d.digest));
    for (const d of blobs) done.add(d.digest);
    await boundedAll(sink.concurrency ?? 4, blobs.map((desc) => async () => {
      const r = await sink.putBlob(desc, () => src.blob(desc), src);
      result.blobs[r] = (result.blobs[r] ?? 0) + 1;
      if (r === 'uploaded') result.bytesUploaded += desc.size;
      log(`${r.padEnd(8)} ${desc.digest} (${desc.size} bytes)`);
    }));
    await sink.putManifest(m, platform);
    result.manifests++;
  };
  let top = await src.top();
  if (isIndexMediaType(top.mediaType) && (opts.platform || sink.singlePlatform)) {
    const picked = await resolveManifest(src, opts.platform);
    top = picked.image;
    await copyManifest(top, picked.platform);
  } else if (isIndexMediaType(top.mediaType)) {
    for (const d of (JSON.parse(top.bytes.toString()) as Index).manifests) await copyManifest(await src.manifest(d.digest, d.mediaType), d.platform);
    await sink.putManifest(top);
    result.manifests++;
  } else {
    await copyManifest(top, undefined);
  }
  result.digest = await sink.commit(top);
  result.mediaType = top.mediaType;
  return result;
}
