/**
 * transport: where an image is read from and written to, as skopeo names it — a registry
 * (`docker://REF` or a bare reference), `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` and
 * `docker-archive:FILE[:NAME:TAG]` — behind one source and one sink shape (as go-containerregistry's
 * remote, layout and tarball packages), and the copy between any two. Imports ../registry,
 * ../output, ../oci, ../limit and ../errors; the front ends and ../mutate import it.
 */
export type { ImageSource, ImageSink, ImageName, ManifestBytes } from './types.ts';
export { parseImageName } from './names.ts';
export { openSource, openSink } from './open.ts';
export { transfer, resolveManifest, readConfig, type TransferOptions, type TransferResult } from './copy.ts';
