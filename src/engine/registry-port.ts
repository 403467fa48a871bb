// The engine's RegistryPort over our registry client (src/registry).
import { Readable } from 'node:stream';
import { parseReference, pushReferrer, type RegistryClient } from '../registry/index.ts';
import type { RegistryPort } from './ports.ts';

export function registryPort(client: RegistryClient): RegistryPort {
  return {
    async resolve(ref, platform) {
      const r = await client.resolveImage(parseReference(ref), platform);
      return { repository: `${r.ref.registry}/${r.ref.repository}`, manifestDigest: r.manifestDigest, manifest: r.manifest, config: r.config };
    },
    async fetchBlob(repository, desc) {
      return client.fetchBlob(parseReference(repository), desc);
    },
    async pushBlob(target, desc, open, mountFrom) {
      const dest = parseReference(target);
      const from = mountFrom ? parseReference(mountFrom) : undefined;
      const sameRegistry = from && from.registry === dest.registry;
      await client.pushBlob(dest, desc, () => Readable.from(open()), sameRegistry ? { mountFrom: [from] } : {});
    },
    async getManifest(ref) {
      const r = parseReference(ref);
      if ((await client.headManifest(r)) === undefined) return undefined;
      const m = await client.getManifest(r);
      return { bytes: m.bytes, mediaType: m.mediaType, digest: m.digest, repository: `${r.registry}/${r.repository}` };
    },
    async putManifest(ref, bytes, mediaType) {
      return client.putManifest(parseReference(ref), Buffer.from(bytes), mediaType);
    },
    async pushReferrer(repository, bytes, desc, subject) {
      return pushReferrer(client, parseReference(repository), Buffer.from(bytes), desc, subject);
    },
  };
}
