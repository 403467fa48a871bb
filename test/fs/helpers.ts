// Test helpers for fs/: snapshots of a directory tree (content, mode, owner, links, xattrs) to
// compare extractions, an OCI layout for umoci, and tar archives crafted byte by byte.
import { lstat, readdir, readFile, readlink, mkdir, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NodeInfo { type: string; mode: string; uid: number; gid: number; hash?: string; link?: string; xattrs?: string; dev?: string; nlinkGroup?: string }

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function has(cmd: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

export function getXattrs(path: string): string {
  if (!has('getfattr')) return '';
  const r = spawnSync('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', path], { encoding: 'utf8' });
  return (r.stdout ?? '').split('\n').filter((l) => l.includes('=')).sort().join(';');
}

/** path → metadata for every node under root (mtimes of dirs excluded: they move on any change). */
export async function snapshotTree(root: string, opts: { mtimes?: boolean } = {}): Promise<Record<string, NodeInfo & { mtime?: number }>> {
  const out: Record<string, NodeInfo & { mtime?: number }> = {};
  const inodes = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(root, r);
      const st = await lstat(p);
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
      const info: NodeInfo & { mtime?: number } = { type, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
      if (type === 'file') {
        info.hash = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16);
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (!inodes.has(key)) inodes.set(key, r);
          info.nlinkGroup = inodes.get(key);
        }
      }
      if (type === 'symlink') info.link = await readlink(p);
      if (type === 'char' || type === 'block') info.dev = `${Math.floor(st.rdev / 256)}:${st.rdev % 256}`;
      const x = type === 'symlink' ? '' : getXattrs(p);
      if (x) info.xattrs = x;
      if (opts.mtimes && type !== 'dir') info.mtime = Math.floor(st.mtimeMs / 1000);
      out[r] = info;
      if (type === 'dir') await walk(r);
    }
  };
  await walk('');
  return out;
}

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix = 'slipway-fs-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Wraps layer blobs in a minimal OCI layout (image ref "test") so umoci can unpack them. */
export async function ociLayout(dir: string, layers: Array<{ digest: string; diffID: string; size: number; mediaType: string; blob: Buffer }>): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const hex = createHash('sha256').update(data).digest('hex');
    await writeFile(join(dir, 'blobs', 'sha256', hex), data);
    return { digest: 'sha256:' + hex, size: data.length };
  };
  for (const l of layers) await put(l.blob);
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffID) } })));
  const manifest = await put(Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  })));
  await writeFile(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'test' } }],
  }));
}

export function sh(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
