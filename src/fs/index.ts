/**
 * fs: everything between a directory tree and a layer blob — deterministic layer writing with
 * (parallel, reproducible) compression over our tar codec, safe layer application with whiteouts,
 * paths resolved inside a root, reading files out of layers without extracting, RUN snapshots
 * (snapshot/), and COPY/ADD planning from the context, URLs and git. Imports only ../oci and
 * ../errors; never the engine, a registry or the runtime.
 */
export { type LayerEntry, type LayerResult, writeLayer, clampLayer, recompressLayer, layerMediaType, normalizeEntries, tarStream } from './writer.ts';
export type { GrowingBlob } from './growing-blob.ts';
export { parseChunkPointer, defaultLevel, type Compression } from './compress.ts';
export { applyLayer } from './apply.ts';
export { materializeEntries } from './materialize.ts';
export { resolveInRoot } from './paths.ts';
export { type SourceTree, dirTree, fileTree, includeList } from './tree.ts';
export { type CopyPlan, planCopy, checksumEntries } from './copy.ts';
export { FileHashIndex } from './hash-index.ts';
export { ContextHashes } from './context-hashes.ts';
export { fetchRemote } from './download.ts';
export { lookupExecUser, resolveChown } from './identity.ts';
export { type LayerIndex, indexLayer, isLayerIndex, type LayerView, type FileScan, type ViewNode, layerView, type FlatView, flattenView, flatLayerView, isFlatView } from './view.ts';
export { type OverlayMount, adoptIntoStore, extractLayerOnce, prepareOverlay, overlaySupported, diffOverlayUpper, recordTree, diffTree } from './snapshot/index.ts';
export { parseGitSource, fetchGit, type GitSource } from './git.ts';
export { isArchive, extractArchive } from './archive.ts';
export { hostRun, hostStart, type HostProcess } from './host-shell.ts';
