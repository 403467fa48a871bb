// Registry-to-registry copy of an image or a whole index, byte for byte (same digests): blobs are
// mounted on the same registry, streamed otherwise; manifests go up only after their blobs, and an
// index only after every manifest it lists.
import { UserError } from '../errors.ts';
import { isIndexMediaType, type Descriptor, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { boundedAll } from '../limit.ts';
import type { RegistryClient, PushResult } from './client.ts';
import { selectPlatform } from './platforms.ts';
import { withTarget, type Reference } from './reference.ts';

export interface CopyOptions {
  /** Copy only this platform's manifest out of an index (its digest becomes the result). */
  platform?: Platform;
  /** Progress lines for the user. */
  log?: (line: string) => void;
}

export interface CopyResult {
  digest: string;
  mediaType: string;
  blobs: Record<PushResult, number>;
  /** Bytes sent as uploads (mounted and existing blobs not counted). */
  bytesUploaded: number;
  manifests: number;
}

const foreign = /foreign|nondistributable/;

export async function copyImage(client: RegistryClient, src: Reference, dst: Reference, opts: CopyOptions = {}): Promise<CopyResult> {
  const result: CopyResult = { digest: '', mediaType: '', blobs: { exists: 0, mounted: 0, uploaded: 0 }, bytesUploaded: 0, manifests: 0 };
  const seen = new Map<string, Promise<PushResult>>();
  const log = opts.log ?? (() => undefined);

  const copyBlob = (desc: Descriptor): Promise<PushResult> => {
    let p = seen.get(desc.digest);
    if (!p) {
      p = client.pushBlob(dst, desc, () => client.fetchBlob(src, desc), { mountFrom: [src] }).then((r) => {
        result.blobs[r]++;
        if (r === 'uploaded') result.bytesUploaded += desc.size;
        log(`${r.padEnd(8)} ${desc.digest} (${desc.size} bytes)`);
        return r;
      });
      seen.set(desc.digest, p);
    }
    return p;
  };

  const copyManifest = async (digest: string): Promise<{ bytes: Buffer; mediaType: string }> => {
    const m = await client.getManifest(withTarget(src, { digest }));
    if (isIndexMediaType(m.mediaType)) throw new UserError(`${src.toString()}: nested index ${digest} is not supported`);
    const manifest = JSON.parse(m.bytes.toString()) as Manifest;
    const blobs = [manifest.config, ...(manifest.layers ?? [])].filter((d) => d && !foreign.test(d.mediaType));
    await boundedAll(client.concurrency, blobs.map((d) => () => copyBlob(d)));
    return m;
  };

  const top = await client.getManifest(src);
  let digest = top.digest;
  let bytes = top.bytes;
  let mediaType = top.mediaType;
  if (isIndexMediaType(top.mediaType)) {
    const index = JSON.parse(top.bytes.toString()) as Index;
    if (opts.platform) {
      const match = selectPlatform(index, opts.platform, src);
      const m = await copyManifest(match.digest);
      digest = match.digest;
      bytes = m.bytes;
      mediaType = m.mediaType;
    } else {
      // Children one after another (each moves its blobs in parallel), pushed by digest before the index.
      for (const child of index.manifests) {
        const m = await copyManifest(child.digest);
        await client.putManifest(withTarget(dst, { digest: child.digest }), m.bytes, m.mediaType);
        result.manifests++;
      }
    }
  } else {
    await copyManifest(top.digest);
  }
  if (dst.digest && dst.digest !== digest) throw new UserError(`destination ${dst.toString()} pins digest ${dst.digest}, but the source is ${digest}`);
  const target = dst.tag || dst.digest ? dst : withTarget(dst, { tag: src.tag, digest: src.tag ? undefined : digest });
  await client.putManifest(target, bytes, mediaType);
  result.manifests++;
  result.digest = digest;
  result.mediaType = mediaType;
  return result;
}
