/**
 * fs: everything between a directory tree and a layer blob — the tar codec, deterministic layer
 * writing with (parallel, reproducible) compression, safe layer application with whiteouts, reading
 * files out of layers without extracting, RUN snapshots, and COPY/ADD planning.
 */
export { type TarHeader, type TarType, type TarEntry, readTar, TarFormatError } from './tar.ts';
export { type Compression, type CompressionOptions, DEFAULT_CHUNK_SIZE, compressStream, decompressStream, detectCompression } from './compress.ts';
export {
  type LayerEntry, type EntryType, type ContentSource, type LayerOptions, type LayerResult,
  writeLayer, clampLayer, normalizeEntries, tarStream, whiteoutEntry, opaqueEntry, layerMediaType,
} from './writer.ts';
export { type ApplyOptions, type ApplyResult, type LayerSource, applyLayer, readLayer } from './apply.ts';
export { cleanLayerPath, comparePaths, resolveInRoot } from './paths.ts';
export { type SourceTree, type SourceNode, dirTree, fileTree, includeList } from './tree.ts';
export { type CopyRequest, type CopyPlan, type ExistingNode, planCopy, checksumEntries } from './copy.ts';
export { type RemoteFile, type FetchOptions, fetchRemote } from './remote.ts';
export { type IdentityFiles, lookupUser, lookupGroup, lookupExecUser, resolveChown } from './identity.ts';
export { parseChmod, type ModeFn } from './chmod.ts';
export { globMatch, excludeMatch, hasGlobMeta } from './glob.ts';
export { isArchive, archiveEntries } from './archive.ts';
export { type LayerView, type ViewNode, layerView, IDENTITY_FILES } from './view.ts';
export { type OverlayMount, type TreeManifest, extractLayerOnce, prepareOverlay, overlaySupported, diffOverlayUpper, recordTree, diffTree, readXattrsTree } from './snapshot.ts';
export { type GitSource, type GitCheckout, parseGitSource, fetchGit } from './git.ts';
