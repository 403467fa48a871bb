// The registry transport over ../registry's client: reads verified by the client, blobs mounted
// from a source in another repository of the same registry.
import { UserError } from '../errors.ts';
import { withTarget, type Reference, type RegistryClient } from '../registry/index.ts';
import type { ImageSink, ImageSource, ManifestBytes } from './types.ts';

export function registrySource(client: RegistryClient, ref: Reference, name: string): ImageSource {
  return {
    name,
    registryRef: ref,
    top: () => client.getManifest(ref),
    manifest: (digest) => client.getManifest(withTarget(ref, { digest })),
    blob: (desc) => client.fetchBlob(ref, desc),
    close: async () => undefined,
  };
}

/**
 * Pushes to `targets` (one repository): manifests by digest, the top under every tag. A target
 * pinned to a digest must be the top's; blobs in another repository of the same registry are mounted.
 */
export function registrySink(client: RegistryClient, targets: Reference[], name: string): ImageSink {
  const dst = targets[0];
  const put = new Set<string>(); // manifests already in by digest
  return {
    name,
    singlePlatform: false,
    wantsPlatform: false,
    concurrency: client.concurrency,
    async putBlob(desc, open, from) {
      const mountFrom = from?.registryRef && from.registryRef.registry === dst.registry ? [from.registryRef] : [];
      // Every source verifies the bytes it streams (ImageSource.blob), failing before the stream
      // ends: the upload does not hash them a second time (a 1 GB copy spent 0.5 s of CPU on it).
      return client.pushBlob(dst, desc, open, { mountFrom, sourceVerified: true });
    },
    async putManifest(m) {
      await client.putManifest(withTarget(dst, { digest: m.digest }), m.bytes, m.mediaType);
      put.add(m.digest);
    },
    async commit(top: ManifestBytes) {
      const pinned = targets.find((t) => t.digest && t.digest !== top.digest);
      if (pinned) throw new UserError(`destination ${pinned.toString()} pins digest ${pinned.digest}, but the source is ${top.digest}`);
      if (!put.has(top.digest)) await client.putManifest(withTarget(dst, { digest: top.digest }), top.bytes, top.mediaType);
      for (const t of targets) if (t.tag) await client.putManifest(withTarget(t, { tag: t.tag }), top.bytes, top.mediaType);
      return top.digest;
    },
    close: async () => undefined,
  };
}
