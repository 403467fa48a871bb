// A layer to append, from a tar, a tar.gz or a directory (its contents at the image's root, owned
// by 0:0, mtimes kept), or `SRC:/DEST` (a file or directory placed at DEST, parents made 0755 with
// mtime 0): gzip bytes, their digest and the diffID of the tar inside.
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
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

function entries(root: string, prefix = ''): LayerEntry[] {
  const out: LayerEntry[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, path));
      const base = { path: prefix + path, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
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

/** `SRC:/DEST`: SRC (file or directory) at DEST, with the parent directories DEST needs. */
async function placedLayer(spec: string, src: string, dest: string): Promise<AddedLayer> {
  const rel = posix.normalize(dest).replace(/^\/+/, '').replace(/\/+$/, '');
  if (!rel || rel.startsWith('..')) throw new UserError(`-f ${spec}: "${dest}" is not a path inside the image`, { hint: 'give SRC:/ABSOLUTE/DEST, e.g. -f ./app:/usr/local/bin/app' });
  let st;
  try {
    st = lstatSync(src);
  } catch {
    throw new UserError(`-f ${spec}: ${src}: no such file or directory`);
  }
  const parts = rel.split('/');
  const list: LayerEntry[] = parts.slice(0, -1).map((_, i) => ({ path: parts.slice(0, i + 1).join('/'), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtime: 0 }));
  const base = { path: rel, mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: Math.floor(st.mtimeMs / 1000) };
  if (st.isDirectory()) list.push({ ...base, type: 'dir' }, ...entries(src, rel + '/'));
  else if (st.isFile()) list.push({ ...base, type: 'file', content: { path: src }, size: st.size });
  else if (st.isSymbolicLink()) list.push({ ...base, type: 'symlink', linkTarget: readlinkSync(src) });
  else throw new UserError(`-f ${spec}: ${src} is neither a file nor a directory`);
  const parts2: Buffer[] = [];
  for await (const c of tarStream(list)) parts2.push(c);
  const tar = Buffer.concat(parts2);
  const gzip = gzipSync(tar, { level: 6 });
  return { source: spec, gzip, digest: sha256(gzip), diffID: sha256(tar) };
}

/**
 * Reads `-f PATH`: a directory, a .tar or a gzip-compressed tar (by its magic bytes), or
 * `SRC:/DEST` when PATH itself does not exist and ends in `:/` and a path.
 */
export async function readLayer(path: string): Promise<AddedLayer> {
  const placed = /^(.+?):(\/.*)$/.exec(path);
  if (placed && !existsSync(path)) return placedLayer(path, placed[1], placed[2]);
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
