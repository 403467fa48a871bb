// What the file transports share: verified reads of blob files, a staging directory for sinks,
// and the safe unpacking of an archive's regular files (and links between them) into a temp dir.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../errors.ts';
import { MediaType, digestMeter, sha256, type Descriptor } from '../oci/index.ts';
import type { ManifestBytes } from './types.ts';

/** A file's bytes, checked against `desc` (size and digest) as they stream. */
export function verifiedFile(path: string, desc: Descriptor, what: string): Readable {
  const { stream: check } = digestMeter(({ digest: got, size }) => (size !== desc.size || got !== desc.digest
    ? new UserError(`${what}: blob ${desc.digest} holds ${size} bytes with digest ${got}, expected ${desc.size} bytes`, { hint: 'the file is damaged; write it again' })
    : undefined));
  const src = createReadStream(path);
  src.on('error', (e) => check.destroy(new UserError(`${what}: blob ${desc.digest} is missing (${(e as Error).message})`)));
  return src.pipe(check);
}

/** A manifest file read whole and checked against its digest. */
export async function readManifestFile(path: string, digest: string, mediaType: string | undefined, what: string): Promise<ManifestBytes> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch {
    throw new UserError(`${what}: manifest ${digest} is missing`);
  }
  if (sha256(bytes) !== digest) throw new UserError(`${what}: manifest ${digest} does not match its bytes`, { hint: 'the file is damaged; write it again' });
  // An OCI manifest need not name its media type; then its shape tells (as in image-spec).
  const doc = JSON.parse(bytes.toString()) as { mediaType?: string; manifests?: unknown };
  const type = mediaType ?? doc.mediaType ?? (doc.manifests ? MediaType.ociIndex : MediaType.ociManifest);
  return { digest, mediaType: type, bytes };
}

/** A staging directory for a sink's blobs: one file per digest. */
export class BlobStage {
  readonly dir: string;
  private readonly have = new Set<string>();
  private constructor(dir: string) {
    this.dir = dir;
  }
  static async create(): Promise<BlobStage> {
    return new BlobStage(await mkdtemp(join(tmpdir(), 'slipway-stage-')));
  }
  path(digest: string): string {
    return join(this.dir, digest.replace(':', '-'));
  }
  /** Writes the blob (once per digest); `open()`'s stream is verified by its source. */
  async put(desc: Descriptor, open: () => Readable): Promise<void> {
    if (this.have.has(desc.digest)) return;
    await pipeline(open(), createWriteStream(this.path(desc.digest)));
    this.have.add(desc.digest);
  }
  close(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Unpacks `file` (a tar) into a new temp dir: regular files only, by their normalised names;
 * symbolic and hard links between entries resolve to the file they name. Returns name → path.
 */
export async function unpackArchive(file: string, what: string): Promise<{ dir: string; files: Map<string, string> }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-unpack-'));
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  const clean = (name: string) => {
    const n = posix.normalize(name.replace(/^\.?\/+/, '')).replace(/\/+$/, '');
    if (n.startsWith('..') || posix.isAbsolute(n)) throw new UserError(`${what}: entry "${name}" points outside the archive`);
    return n;
  };
  let count = 0;
  const extract = (await tarStream()).extract();
  extract.on('entry', (header, stream, next) => {
    const name = clean(header.name);
    if (header.type === 'file' || header.type === 'contiguous-file') {
      const path = join(dir, String(count++));
      files.set(name, path);
      pipeline(stream, createWriteStream(path)).then(() => next(), next);
      return;
    }
    if ((header.type === 'symlink' || header.type === 'link') && header.linkname) {
      links.set(name, clean(header.type === 'symlink' ? posix.join(posix.dirname(name), header.linkname) : header.linkname));
    }
    stream.resume();
    stream.on('end', () => next());
  });
  try {
    await mkdir(dirname(dir), { recursive: true });
    await pipeline(createReadStream(file), extract);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    if (e instanceof UserError) throw e;
    throw new UserError(`${what}: cannot read the archive (${(e as Error).message})`, { hint: 'give a tar file as written by skopeo, docker save or slipway' });
  }
  for (const [name, target] of links) {
    let t: string | undefined = target;
    for (let i = 0; i < 8 && t && !files.has(t); i++) t = links.get(t);
    if (t && files.has(t)) files.set(name, files.get(t)!);
  }
  return { dir, files };
}

/** tar-stream, loaded when a file output or archive needs it, not with every command. */
async function tarStream(): Promise<typeof import('tar-stream')> {
  return (await import('tar-stream')).default;
}
