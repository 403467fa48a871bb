// The OCI image layout as a transport: `oci:DIR[:TAG]` and `oci-archive:FILE[:TAG]`. A source picks
// the index.json entry whose org.opencontainers.image.ref.name is TAG (or the only entry); a sink
// stages blobs and writes the whole layout (../output's writer) with TAG as that annotation, so
// every manifest keeps its bytes and digest.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import { isIndexMediaType, type Descriptor, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { writeOciLayout, type PlatformImage } from '../output/index.ts';
import { BlobStage, readManifestFile, unpackArchive, verifiedFile } from './files.ts';
import type { ImageSink, ImageSource, ManifestBytes } from './types.ts';

const refName = 'org.opencontainers.image.ref.name';
const blobName = (digest: string) => `blobs/${digest.replace(':', '/')}`;

async function layoutSource(name: string, file: (n: string) => string | undefined, tag: string | undefined, cleanup: () => Promise<void>): Promise<ImageSource> {
  const indexPath = file('index.json');
  let index: Index;
  try {
    index = JSON.parse(await readFile(indexPath ?? '', 'utf8')) as Index;
  } catch {
    throw new UserError(`${name}: no OCI image layout here (index.json is missing or not JSON)`, { hint: 'give a directory or tar written by skopeo, umoci, buildx or slipway -o type=oci' });
  }
  const entries = index.manifests ?? [];
  const chosen = tag ? entries.filter((d) => d.annotations?.[refName] === tag) : entries;
  if (chosen.length !== 1) {
    const tags = entries.map((d) => d.annotations?.[refName]).filter(Boolean).join(', ') || 'none';
    throw new UserError(tag ? `${name}: no image tagged "${tag}" (tags: ${tags})` : `${name}: the layout holds ${entries.length} images; name one as ${name}:TAG (tags: ${tags})`);
  }
  const top = chosen[0];
  const path = (digest: string) => file(blobName(digest)) ?? '';
  return {
    name,
    top: () => readManifestFile(path(top.digest), top.digest, top.mediaType, name),
    manifest: (digest, mediaType) => readManifestFile(path(digest), digest, mediaType, name),
    blob: (desc) => verifiedFile(path(desc.digest), desc, name),
    close: cleanup,
  };
}

export function ociDirSource(dir: string, tag: string | undefined, name: string): Promise<ImageSource> {
  return layoutSource(name, (n) => join(dir, n), tag, async () => undefined);
}

export async function ociArchiveSource(file: string, tag: string | undefined, name: string): Promise<ImageSource> {
  const { dir, files } = await unpackArchive(file, name);
  const drop = () => rm(dir, { recursive: true, force: true });
  try {
    return await layoutSource(name, (n) => files.get(n), tag, drop);
  } catch (e) {
    await drop();
    throw e;
  }
}

/** What a file sink keeps: every manifest it took, with the platform it was given. */
class StagedImages {
  readonly manifests = new Map<string, { m: ManifestBytes; platform?: Platform }>();
  readonly stage: BlobStage;
  constructor(stage: BlobStage) {
    this.stage = stage;
  }

  /** The images below `top` (one manifest, or an index's children) as the writers take them. */
  async images(top: ManifestBytes): Promise<PlatformImage[]> {
    const list = isIndexMediaType(top.mediaType)
      ? (JSON.parse(top.bytes.toString()) as Index).manifests.map((d: Descriptor) => ({ d, platform: d.platform }))
      : [{ d: { digest: top.digest } as Descriptor, platform: this.manifests.get(top.digest)?.platform }];
    const out: PlatformImage[] = [];
    for (const { d, platform } of list) {
      const got = this.manifests.get(d.digest) ?? (d.digest === top.digest ? { m: top } : undefined);
      if (!got) throw new Error(`manifest ${d.digest} was not staged`);
      if (isIndexMediaType(got.m.mediaType)) throw new UserError(`${d.digest}: an index inside an index cannot be written to a file here`);
      const manifest = JSON.parse(got.m.bytes.toString()) as Manifest;
      const config = await readFile(this.stage.path(manifest.config.digest));
      out.push({
        platform: platform ?? { os: 'unknown', architecture: 'unknown' },
        manifest: got.m,
        config: { bytes: config, digest: manifest.config.digest },
        layers: manifest.layers.map((l) => ({ descriptor: l, path: this.stage.path(l.digest) })),
      });
    }
    return out;
  }
}

/**
 * A file sink: blobs and manifests staged in a temp dir, `write` makes the file from them on commit
 * and returns the digest the file holds the image under.
 */
export async function stagedSink(name: string, singlePlatform: boolean, write: (images: PlatformImage[], top: ManifestBytes) => Promise<string>): Promise<ImageSink> {
  const staged = new StagedImages(await BlobStage.create());
  return {
    name,
    singlePlatform,
    async putBlob(desc, open) {
      await staged.stage.put(desc, open);
      return 'written';
    },
    async putManifest(m, platform) {
      staged.manifests.set(m.digest, { m, platform });
    },
    commit: async (top) => write(await staged.images(top), top),
    close: () => staged.stage.close(),
  };
}

/** Writes `oci:DIR[:TAG]` (tar false) or `oci-archive:FILE[:TAG]` (tar true) on commit. */
export function ociSink(dest: string, tag: string | undefined, tar: boolean, name: string): Promise<ImageSink> {
  return stagedSink(name, false, async (images, top) => {
    const index = isIndexMediaType(top.mediaType) ? top : undefined;
    return (await writeOciLayout({ dest, tar, images, index, descriptorAnnotations: tag ? { [refName]: tag } : undefined })).digest;
  });
}
