/**
 * oci: the shared vocabulary of images — media types, descriptors, manifests, indexes, image
 * configs, platforms and digests. Pure data and small helpers; no I/O beyond hashing buffers.
 * The bottom of the tree: imports no other folder.
 */
export * from './mediatypes.ts';
export * from './types.ts';
export * from './platform.ts';
export * from './digest.ts';
export { sha256Hasher, sha256Hex, type Sha256 } from './sha256.ts';
export * from './documents.ts';
