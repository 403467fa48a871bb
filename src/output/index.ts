/**
 * output: writes built images without a registry — an OCI image layout (directory or tar) and the
 * `docker load` tarball. Deterministic bytes, digests verified on the way, atomic at the destination.
 * Imports only ../oci and ../errors: the engine hands it bytes and blob files. load.ts hands a
 * docker archive to the docker CLI.
 */
export { writeOciLayout, type OciLayoutOptions, type OutputResult } from './oci-layout.ts';
export { writeDockerArchive, type DockerArchiveOptions } from './docker-archive.ts';
export type { BuiltImages, PlatformImage, BlobBytes } from './images.ts';
export { parseTagName, fullName, type TagName } from './names.ts';
export { findImageLoader, loadArchive, type ImageLoader } from './load.ts';
