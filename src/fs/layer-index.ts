// One layer's index: every entry's header and the bytes of the identity files only, kept beside the
// layer so a view of it (view.ts) reads no tar. Apart from view.ts so the writer, which makes it
// as a layer is written, depends on nothing that depends on the writer.
import type { TarType } from './tar.ts';

export const IDENTITY_FILES = ['etc/passwd', 'etc/group'];

type IndexedEntry = [name: string, type: TarType, mode: number, uid: number, gid: number, mtime: number, size: number, linkname: string];

/**
 * One layer as the default view reads it — every entry's header, the bytes of the identity files
 * only — small enough to keep beside the layer (engine/layers.ts), so a later build's COPY or
 * WORKDIR reads no tar of the layers below it.
 */
export interface LayerIndex { kind: 'slipway-layer-index'; version: 1; entries: IndexedEntry[]; files: Record<string, string> }

export function isLayerIndex(x: unknown): x is LayerIndex {
  const i = x as LayerIndex | null;
  return typeof i === 'object' && i !== null && i.kind === 'slipway-layer-index' && i.version === 1 && Array.isArray(i.entries) && typeof i.files === 'object';
}

export function emptyLayerIndex(): LayerIndex {
  return { kind: 'slipway-layer-index', version: 1, entries: [], files: {} };
}
