// The tarball `docker load` reads (the `docker save` format): manifest.json with Config, RepoTags and
// Layers, the legacy `repositories` file, and one uncompressed layer.tar per layer directory. Layers
// are decompressed here and checked against the config's diff_ids.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import { digestMeter, layerCompression, jsonBytes, type ImageConfig, type Platform } from '../oci/index.ts';
import { checkDigests, pickImage, type BuiltImages } from './images.ts';
import { familiarRepository, parseTagName } from './names.ts';
import { writeTreeAsTar, type TreeEntry } from './tree.ts';
import type { OutputResult } from './oci-layout.ts';

export interface DockerArchiveOptions extends BuiltImages {
  dest: string;
  /** Which image to write when the build made several. */
  platform?: Platform;
  sourceDateEpoch?: number;
}

/** Decompresses a layer blob into `file`; returns the diffID and size of the uncompressed tar. */
async function decompressLayer(src: string, mediaType: string, file: string): Promise<{ diffID: string; size: number }> {
  const compression = layerCompression(mediaType);
  if (compression === undefined) throw new Error(`cannot write layer of media type ${mediaType} to a docker archive`);
  const measure = digestMeter();
  const stages = compression === 'gzip' ? [createGunzip()] : compression === 'zstd' ? [createZstdDecompress()] : [];
  await pipeline([createReadStream(src), ...stages, measure.stream, createWriteStream(file, { flags: 'wx' })]);
  const { digest, size } = measure.result();
  return { diffID: digest, size };
}

export async function writeDockerArchive(o: DockerArchiveOptions): Promise<OutputResult> {
  checkDigests(o);
  const image = pickImage(o, o.platform, 'a docker archive');
  const names = (o.tags ?? []).map(parseTagName);
  const config = JSON.parse(Buffer.from(image.config.bytes).toString('utf8')) as ImageConfig;
  const diffIDs = config.rootfs?.diff_ids ?? [];
  if (diffIDs.length !== image.layers.length) throw new Error(`image config lists ${diffIDs.length} diff_ids for ${image.layers.length} layers`);

  await mkdir(dirname(o.dest), { recursive: true });
  const staging = join(dirname(o.dest), `.${randomBytes(6).toString('hex')}.slipway-layers`);
  await mkdir(staging);
  try {
    const configName = `${image.config.digest.slice('sha256:'.length)}.json`;
    const entries: TreeEntry[] = [{ name: configName, bytes: image.config.bytes }];
    const layerNames: string[] = [];
    let parent = '';
    for (const [i, layer] of image.layers.entries()) {
      // Legacy v1 layer ids: a chain over the diffIDs, so a repeated layer gets its own directory.
      const id = createHash('sha256').update(`${parent} ${diffIDs[i]}`).digest('hex');
      const file = join(staging, id);
      const { diffID, size } = await decompressLayer(layer.path, layer.descriptor.mediaType, file);
      if (diffID !== diffIDs[i]) throw new Error(`layer ${i} (${layer.descriptor.digest}) uncompresses to ${diffID}, but the config says ${diffIDs[i]}`);
      entries.push({ name: `${id}/layer.tar`, path: file, size, digest: diffID });
      entries.push({ name: `${id}/VERSION`, bytes: Buffer.from('1.0') });
      entries.push({ name: `${id}/json`, bytes: jsonBytes({ id, ...(parent ? { parent } : {}), os: config.os, architecture: config.architecture }) });
      layerNames.push(`${id}/layer.tar`);
      parent = id;
    }
    const repoTags = names.map((n) => `${familiarRepository(n)}:${n.tag}`);
    entries.push({ name: 'manifest.json', bytes: jsonBytes([{ Config: configName, RepoTags: repoTags.length ? repoTags : null, Layers: layerNames }]) });
    if (names.length > 0 && parent) {
      const repositories: Record<string, Record<string, string>> = {};
      for (const n of names) (repositories[familiarRepository(n)] ??= {})[n.tag] = parent;
      entries.push({ name: 'repositories', bytes: jsonBytes(repositories) });
    }
    await writeTreeAsTar(o.dest, entries, new Date((o.sourceDateEpoch ?? 0) * 1000));
    return { dest: o.dest, digest: image.manifest.digest };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
