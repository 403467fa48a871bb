// A view of an image's filesystem from its layer blobs, without extracting them: the metadata of
// every path (for COPY's "existing destination" rule) and the bytes of a few wanted files
// (/etc/passwd, /etc/group for `--chown=name` and `USER name`). Whiteouts and opaque dirs apply.
import { UserError } from '../errors.ts';
import { readLayer, type LayerSource } from './apply.ts';
import { cleanRelative } from './paths.ts';
import type { ExistingNode } from './copy.ts';
import type { IdentityFiles } from './identity.ts';

export interface ViewNode extends ExistingNode { size: number; linkTarget?: string; layer: number }

export interface LayerView {
  /** Metadata of an image path (no leading slash needed), or undefined when absent. */
  stat(path: string): ViewNode | undefined;
  /** Content of a wanted file (as it ends up after all layers), or undefined. */
  file(path: string): Buffer | undefined;
  /** /etc/passwd and /etc/group as found. */
  identity(): IdentityFiles;
  /** Every path present, unsorted. */
  paths(): IterableIterator<string>;
}

export const IDENTITY_FILES = ['etc/passwd', 'etc/group'];

/** Reads layers (bottom first) into a view; `want` lists (or picks) the files whose bytes to keep. */
export async function layerView(layers: LayerSource[], want: string[] | ((path: string) => boolean) = IDENTITY_FILES): Promise<LayerView> {
  const nodes = new Map<string, ViewNode>();
  const bytes = new Map<string, Buffer>();
  const listed = typeof want === 'function' ? undefined : new Set(want.map((w) => cleanRelative(w) ?? ''));
  const wanted = { has: (p: string): boolean => (listed ? listed.has(p) : (want as (path: string) => boolean)(p)) };
  const removeTree = (p: string, below?: number): void => {
    const node = below === undefined ? nodes.get(p) : undefined;
    if (node && node.type !== 'dir') { // nothing lies below a file: no scan of every path
      nodes.delete(p);
      bytes.delete(p);
      return;
    }
    const prefix = p === '' ? '' : p + '/';
    for (const [k, v] of nodes) {
      if ((k === p && p !== '') || k.startsWith(prefix)) {
        if (k === p && below !== undefined) continue; // opaque: the dir itself stays
        if (below !== undefined && v.layer >= below) continue;
        nodes.delete(k);
        bytes.delete(k);
      }
    }
  };
  for (let i = 0; i < layers.length; i++) {
    for await (const e of readLayer(layers[i])) {
      const h = e.header;
      const rel = cleanRelative(h.name);
      if (rel === null) throw new UserError(`layer ${i + 1} entry ${JSON.stringify(h.name)} climbs out of the root with ..`);
      if (rel === '') continue;
      const slash = rel.lastIndexOf('/');
      const dir = slash === -1 ? '' : rel.slice(0, slash);
      const base = rel.slice(slash + 1);
      if (base === '.wh..wh..opq') { removeTree(dir, i); continue; }
      if (base.startsWith('.wh.')) { removeTree((dir ? dir + '/' : '') + base.slice(4)); continue; }
      const prev = nodes.get(rel);
      if (prev && !(prev.type === 'dir' && h.type === 'dir')) removeTree(rel);
      if (h.type === 'hardlink') {
        const target = cleanRelative(h.linkname) ?? '';
        const t = nodes.get(target);
        if (t) nodes.set(rel, { ...t, layer: i });
        const b = bytes.get(target);
        if (b) bytes.set(rel, b);
        continue;
      }
      nodes.set(rel, { type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime, size: h.size, linkTarget: h.type === 'symlink' ? h.linkname : undefined, layer: i });
      if (h.type === 'file' && wanted.has(rel)) {
        const parts: Buffer[] = [];
        for await (const b of e.body()) parts.push(b);
        bytes.set(rel, Buffer.concat(parts));
      }
    }
  }
  const key = (p: string): string => cleanRelative(p) ?? '';
  return {
    stat: (p) => nodes.get(key(p)),
    file: (p) => bytes.get(key(p)),
    identity: () => ({ passwd: bytes.get('etc/passwd')?.toString('utf8'), group: bytes.get('etc/group')?.toString('utf8') }),
    paths: () => nodes.keys(),
  };
}
