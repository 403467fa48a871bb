// `docker-archive:FILE[:NAME:TAG]`, the `docker save` / `docker load` tarball. It keeps a config and
// layer tars but no manifest, so a source makes a Docker schema 2 manifest: the config bytes as
// they are (same config digest, same diff_ids), each layer as it is if gzip-compressed, else
// compressed here with gzip. A sink writes one platform through ../output's writer, which stores
// the layers uncompressed, as `docker save` does.
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createHash } from 'node:crypto';
import { UserError } from '../errors.ts';
import { MediaType, digestMeter, jsonBytes, sha256, type Descriptor, type Manifest } from '../oci/index.ts';
import { fullName, parseTagName, writeDockerArchive } from '../output/index.ts';
import { unpackArchive, verifiedFile } from './files.ts';
import { stagedSink } from './oci.ts';
import type { ImageSink, ImageSource, ManifestBytes } from './types.ts';

interface ArchiveEntry { Config: string; RepoTags?: string[] | null; Layers: string[] }

async function magic(path: string): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(4);
    await fh.read(b, 0, 4, 0);
    return b;
  } finally {
    await fh.close();
  }
}

/** gzip of `src` into `dest`; the digest and size of what was written. */
async function gzipFile(src: string, dest: string): Promise<{ digest: string; size: number }> {
  const measure = digestMeter();
  await pipeline(createReadStream(src), createGzip(), measure.stream, createWriteStream(dest));
  return measure.result();
}

async function fileDigest(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) { hash.update(c as Buffer); size += (c as Buffer).length; }
  return { digest: 'sha256:' + hash.digest('hex'), size };
}

export async function dockerArchiveSource(file: string, tag: string | undefined, name: string): Promise<ImageSource> {
  const { dir, files } = await unpackArchive(file, name);
  const drop = () => rm(dir, { recursive: true, force: true });
  try {
    let entries: ArchiveEntry[];
    try {
      entries = JSON.parse(await readFile(files.get('manifest.json') ?? '', 'utf8')) as ArchiveEntry[];
    } catch {
      throw new UserError(`${name}: not a docker archive (manifest.json is missing or not JSON)`, { hint: 'give a tar written by docker save, skopeo or slipway -o type=docker' });
    }
    const want = tag ? fullName(parseTagName(tag)) : undefined;
    const chosen = want ? entries.filter((e) => (e.RepoTags ?? []).some((t) => fullName(parseTagName(t)) === want)) : entries;
    if (chosen.length !== 1) {
      const names = entries.flatMap((e) => e.RepoTags ?? []).join(', ') || 'none';
      throw new UserError(want ? `${name}: no image named ${tag} (names: ${names})` : `${name}: the archive holds ${entries.length} images; name one as ${name}:NAME:TAG (names: ${names})`);
    }
    const entry = chosen[0];
    const config = await readFile(files.get(entry.Config) ?? '').catch(() => { throw new UserError(`${name}: ${entry.Config} is missing`); });
    const paths = new Map<string, string>();
    const layers: Descriptor[] = [];
    for (const [i, l] of entry.Layers.entries()) {
      const path = files.get(l);
      if (!path) throw new UserError(`${name}: layer ${l} is missing`);
      const head = await magic(path);
      let blob = path;
      if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) throw new UserError(`${name}: layer ${l} is zstd-compressed; a docker archive holds tar or gzip layers`);
      if (!(head[0] === 0x1f && head[1] === 0x8b)) {
        blob = join(dir, `gz-${i}`);
        await gzipFile(path, blob);
      }
      const d = await fileDigest(blob);
      paths.set(d.digest, blob);
      layers.push({ mediaType: MediaType.dockerLayerGzip, digest: d.digest, size: d.size });
    }
    const configDesc: Descriptor = { mediaType: MediaType.dockerConfig, digest: sha256(config), size: config.length };
    paths.set(configDesc.digest, files.get(entry.Config)!);
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.dockerManifest, config: configDesc, layers };
    const bytes = jsonBytes(manifest);
    const top: ManifestBytes = { digest: sha256(bytes), mediaType: MediaType.dockerManifest, bytes };
    return {
      name,
      top: async () => top,
      manifest: async (digest) => {
        if (digest !== top.digest) throw new UserError(`${name}: holds no manifest ${digest}`);
        return top;
      },
      blob: (desc) => verifiedFile(paths.get(desc.digest) ?? '', desc, name),
      close: drop,
    };
  } catch (e) {
    await drop();
    throw e;
  }
}

/** Writes one image as a `docker load` tarball, named `tag` (NAME:TAG) when given. */
export function dockerArchiveSink(dest: string, tag: string | undefined, name: string): Promise<ImageSink> {
  if (tag) parseTagName(tag);
  return stagedSink(name, true, async (images) => {
    await writeDockerArchive({ dest, images, tags: tag ? [tag] : [] });
    // The archive keeps no manifest: what identifies the image there is its config.
    return images[0].config.digest;
  });
}
