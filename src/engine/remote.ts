// The engine's RegistryPort over our registry client (src/registry).
import { Readable } from 'node:stream';
import { parseReference, type RegistryClient } from '../registry/index.ts';
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
    async putManifest(ref, bytes, mediaType) {
      return client.putManifest(parseReference(ref), Buffer.from(bytes), mediaType);
    },
  };
}
