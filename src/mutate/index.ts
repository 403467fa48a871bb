/**
 * mutate: new images made from existing ones without a Dockerfile (crane's mutate and append):
 * config edits and appended layers (tar, tar.gz or a directory, via ../fs's tar writer) on every
 * platform; base layers are mounted, never moved. Reads and writes through ../transport; imports
 * also ../fs, ../oci and ../errors; nothing imports it but cli/.
 */
export { mutateImage, type MutateOptions, type Mutated } from './image.ts';
export { editConfig, type ConfigEdits } from './config.ts';
export { readLayer, type AddedLayer } from './layer.ts';
