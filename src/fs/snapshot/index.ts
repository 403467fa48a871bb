/**
 * fs/snapshot: what a RUN step changed, as layer entries — the overlay snapshotter (upper dir of a
 * mount over the extracted-layer store) and the walk-and-compare one (a plain directory, recorded
 * before and compared after); both give byte-identical layers. Imports fs's own modules only.
 */
export { adoptIntoStore, extractLayerOnce } from './store.ts';
export { prepareOverlay, overlaySupported, diffOverlayUpper, type OverlayMount } from './overlay.ts';
export { recordTree, diffTree, type TreeManifest } from './walk.ts';
