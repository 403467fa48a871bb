// A small set of files written either as a directory or as a deterministic tar (sorted names, fixed
// mtime, numeric owner 0:0, fixed modes), always through a temp name renamed into place, so a failed
// write leaves nothing at the destination.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

export type TreeEntry =
  | { name: string; bytes: Uint8Array }
  /** A file copied from disk; with `digest`, its bytes are verified as they are copied. */
  | { name: string; path: string; size: number; digest?: string };

class ContentMismatchError extends Error {}

function checkedSource(e: Extract<TreeEntry, { path: string }>): AsyncIterable<Uint8Array> {
  return (async function* () {
    const hash = e.digest ? createHash(e.digest.slice(0, e.digest.indexOf(':'))) : undefined;
    let size = 0;
    for await (const chunk of createReadStream(e.path, { highWaterMark: 1 << 20 })) {
      hash?.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (size !== e.size) throw new ContentMismatchError(`${e.path}: ${size} bytes, expected ${e.size} for ${e.name}`);
    if (hash && `${e.digest!.slice(0, e.digest!.indexOf(':'))}:${hash.digest('hex')}` !== e.digest) {
      throw new ContentMismatchError(`${e.path}: content does not match ${e.digest}`);
    }
  })();
}

function tempName(dest: string): string {
  return join(dirname(dest), `.${randomBytes(6).toString('hex')}.slipway-tmp`);
}

/** Every directory that must precede the files, sorted, so the tar lists parents first. */
function withDirs(entries: TreeEntry[]): Array<TreeEntry | { name: string; dir: true }> {
  const dirs = new Set<string>();
  for (const e of entries) {
    const parts = e.name.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/') + '/');
  }
  const all: Array<TreeEntry | { name: string; dir: true }> = [...[...dirs].map((name) => ({ name, dir: true as const })), ...entries];
  return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Writes the entries as a tar file at `dest` (replacing it atomically). */
export async function writeTreeAsTar(dest: string, entries: TreeEntry[], mtime = new Date(0)): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempName(dest);
  try {
    const pack = (await tarStream()).pack();
    const written = pipeline(pack, createWriteStream(tmp, { flags: 'wx' }));
    const fill = (async () => {
      for (const e of withDirs(entries)) {
        const header = { name: e.name, mtime, uid: 0, gid: 0, uname: '', gname: '' };
        if ('dir' in e) {
          await new Promise<void>((res, rej) => pack.entry({ ...header, type: 'directory', mode: 0o755 }, (err) => (err ? rej(err) : res())));
        } else if ('bytes' in e) {
          await new Promise<void>((res, rej) => pack.entry({ ...header, type: 'file', mode: 0o644, size: e.bytes.length }, Buffer.from(e.bytes), (err) => (err ? rej(err) : res())));
        } else {
          const sink = pack.entry({ ...header, type: 'file', mode: 0o644, size: e.size });
          await pipeline(checkedSource(e), sink);
        }
      }
      pack.finalize();
    })();
    fill.catch((err) => pack.destroy(err));
    await Promise.all([fill, written]);
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Writes the entries as a directory at `dest`; an existing `dest` is replaced only once all is written. */
export async function writeTreeAsDir(dest: string, entries: TreeEntry[]): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = tempName(dest);
  try {
    for (const e of entries) {
      const file = join(tmp, e.name);
      await mkdir(dirname(file), { recursive: true });
      if ('bytes' in e) {
        const fh = await open(file, 'wx', 0o644);
        try {
          await fh.writeFile(e.bytes);
        } finally {
          await fh.close();
        }
      } else {
        await pipeline(checkedSource(e), createWriteStream(file, { flags: 'wx', mode: 0o644 }));
      }
    }
    const existing = await stat(dest).catch(() => undefined);
    if (existing) {
      const old = tempName(dest);
      await rename(dest, old);
      await rename(tmp, dest);
      await rm(old, { recursive: true, force: true });
    } else {
      await rename(tmp, dest);
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** tar-stream, loaded when a file output or archive needs it, not with every command. */
async function tarStream(): Promise<typeof import('tar-stream')> {
  return (await import('tar-stream')).default;
}
