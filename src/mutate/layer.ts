// A layer to append, from a tar, a tar.gz or a directory (its contents at the image's root, owned
// by 0:0, mtimes kept): gzip bytes, their digest and the diffID of the tar inside.
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { UserError } from '../errors.ts';
import { tarStream, type LayerEntry } from '../fs/index.ts';
import { sha256 } from '../oci/index.ts';

export interface AddedLayer {
  /** Where it came from (for messages and history). */
  source: string;
  gzip: Buffer;
  digest: string;
  diffID: string;
}

function entries(root: string): LayerEntry[] {
  const out: LayerEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const base = { path, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
      if (st.isDirectory()) {
        out.push({ ...base, type: 'dir' });
        walk(path);
      } else if (st.isSymbolicLink()) out.push({ ...base, type: 'symlink', linkTarget: readlinkSync(join(root, path)) });
      else if (st.isFile()) out.push({ ...base, type: 'file', content: { path: join(root, path) }, size: st.size });
    }
  };
  walk('');
  return out;
}

/** Reads `-f PATH`: a directory, a .tar or a gzip-compressed tar (by its magic bytes). */
export async function readLayer(path: string): Promise<AddedLayer> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`-f ${path}: no such file or directory`, { hint: 'give a tar, a tar.gz or a directory' });
  }
  let tar: Buffer;
  let gzip: Buffer | undefined;
  if (st.isDirectory()) {
    const parts: Buffer[] = [];
    for await (const c of tarStream(entries(path))) parts.push(c);
    tar = Buffer.concat(parts);
  } else {
    const bytes = readFileSync(path);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      gzip = bytes;
      try {
        tar = gunzipSync(bytes);
      } catch (e) {
        throw new UserError(`-f ${path}: a broken gzip stream (${(e as Error).message})`);
      }
    } else {
      tar = bytes;
    }
    if (tar.length < 512 || tar.subarray(257, 262).toString() !== 'ustar') throw new UserError(`-f ${path}: not a tar archive (no ustar header)`, { hint: 'give a tar, a tar.gz or a directory' });
  }
  gzip ??= gzipSync(tar, { level: 6 });
  return { source: path, gzip, digest: sha256(gzip), diffID: sha256(tar) };
}
