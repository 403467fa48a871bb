// The engine's RegistryPort over our registry client (src/registry). Pulls (resolve, HEAD) go to
// the pull mirrors first, in order, then upstream; a mirror that fails or serves content that
// does not match its digest costs one warning and the next source is tried.
import { Readable } from 'node:stream';
import { parseReference, pullSources, pushReferrers, readReferrersListing, untag, type ReferrersListing as RegistryListing, type MirrorRule, type Reference, type RegistryClient } from '../registry/index.ts';
import type { RegistryPort, StagedBlob } from './ports.ts';

export interface RegistryPortOptions {
  mirrors?: MirrorRule[];
  warn?: (message: string) => void;
}

export function registryPort(client: RegistryClient, opts: RegistryPortOptions = {}): RegistryPort {
  /** `fn` on each pull source of `ref` until one answers. */
  const pull = async <T>(ref: string, fn: (r: Reference, last: boolean) => Promise<T>): Promise<T> => {
    const sources = pullSources(opts.mirrors ?? [], parseReference(ref));
    for (let i = 0; ; i++) {
      try {
        return await fn(sources[i], i === sources.length - 1);
      } catch (e) {
        if (i === sources.length - 1) throw e;
        opts.warn?.(`mirror ${sources[i].registry} could not serve ${ref} (${e instanceof Error ? e.message.split('\n')[0] : String(e)}); trying ${sources[i + 1].registry}`);
      }
    }
  };
  return {
    resolve(ref, platform) {
      return pull(ref, async (src) => {
        // As BuildKit's resolver: an index gives the platform's manifest; a single manifest is the
        // image whatever its platform (the build checks warn InvalidBaseImagePlatform).
        const r = await client.resolveImage(src, platform, { anySinglePlatform: true });
        return {
          repository: `${r.ref.registry}/${r.ref.repository}`, topDigest: r.indexDigest ?? r.manifestDigest, manifestDigest: r.manifestDigest,
          manifest: r.manifest, manifestBytes: r.manifestBytes, manifestMediaType: r.mediaType, config: r.config, configBytes: r.configBytes,
        };
      });
    },
    head(ref) {
      return pull(ref, async (src, last) => {
        const digest = await client.headManifest(src);
        // A mirror without the image is no answer: the next source may have it.
        if (digest === undefined && !last) throw new Error('not found');
        return digest;
      });
    },
    headTarget(ref) {
      return client.headManifest(parseReference(ref));
    },
    async fetchBlob(repository, desc) {
      return client.fetchBlob(parseReference(repository), desc);
    },
    async pushBlob(target, desc, open, mountFrom) {
      const dest = parseReference(target);
      await client.pushBlob(dest, desc, () => Readable.from(open()), mountOption(dest, mountFrom));
    },
    stageBlob(target, desc, open, mountFrom) {
      const dest = parseReference(target);
      const sending = following(open);
      const staged = client.stageBlob(dest, desc, sending.open, mountOption(dest, mountFrom));
      return stagedBlob(client, dest, staged, sending, async () => client.pushBlob(dest, desc, () => Readable.from(open()), { ...mountOption(dest, mountFrom), staged }));
    },
    stageGrowingBlob(target, open, final) {
      const dest = parseReference(target);
      const sending = following(open);
      const staged = client.stageGrowingBlob(dest, sending.open, final);
      return stagedBlob(client, dest, staged, sending, async () => client.pushBlob(dest, await final, () => Readable.from(open()), { staged }));
    },
    async uploadBlob(target, desc, bytes) {
      await client.pushBlob(parseReference(target), desc, () => Readable.from([Buffer.from(bytes)]), { unasked: true });
    },
    reserveUpload(target) {
      const ref = parseReference(target);
      const opened = client.openUpload(ref);
      let used = false;
      return {
        async upload(desc, bytes) {
          used = true;
          await client.pushBlob(ref, desc, () => Readable.from([Buffer.from(bytes)]), { unasked: true, opened });
        },
        async release() {
          if (used) return;
          used = true;
          const o = await opened;
          if (o) await client.cancelUpload(ref, o);
        },
      };
    },
    async getManifest(ref) {
      const r = parseReference(ref);
      const m = await client.findManifest(r);
      return m && { bytes: m.bytes, mediaType: m.mediaType, digest: m.digest, repository: `${r.registry}/${r.repository}` };
    },
    async putManifest(ref, bytes, mediaType) {
      return client.putManifest(parseReference(ref), Buffer.from(bytes), mediaType);
    },
    async deleteTag(ref) {
      return untag(client, parseReference(ref));
    },
    async pushReferrers(repository, artifacts, subject, listing) {
      return pushReferrers(client, parseReference(repository), artifacts.map((a) => ({ bytes: Buffer.from(a.bytes), desc: a.desc })), subject, listing as RegistryListing | undefined);
    },
    async readReferrers(repository, subject) {
      return readReferrersListing(client, parseReference(repository), subject);
    },
  };
}

/** A cross-repository mount source, where it is on the destination's registry. */
function mountOption(dest: Reference, mountFrom: string | undefined): { mountFrom?: Reference[] } {
  const from = mountFrom ? parseReference(mountFrom) : undefined;
  return from && from.registry === dest.registry ? { mountFrom: [from] } : {};
}

/** A stream of `open`'s bytes for a staged upload, kept to be stopped if the build ends first. */
function following(open: () => AsyncIterable<Uint8Array>): { open: () => Readable; stop: () => void } {
  let sending: Readable | undefined;
  return { open: () => (sending = Readable.from(open())), stop: () => sending?.destroy() };
}

/** A staged upload as the engine holds it: pushed (its PUT, or the whole push where staging failed) or released. */
function stagedBlob(client: RegistryClient, dest: Reference, staged: ReturnType<RegistryClient['stageBlob']>, sending: { stop: () => void }, push: () => Promise<unknown>): StagedBlob {
  let used = false;
  return {
    sent: staged.then(() => undefined),
    async push() {
      used = true;
      await push();
    },
    async release() {
      if (used) return;
      used = true;
      // Bytes still on their way are stopped, not waited for: the failed send cancels its upload.
      sending.stop();
      const s = await staged;
      if (s?.kind === 'sent') await client.cancelUpload(dest, s);
    },
  };
}
