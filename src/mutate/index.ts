/**
 * mutate: new images made from existing ones without a Dockerfile (crane's mutate): config edits
 * for every platform, pushed with only the config and manifests new. Imports ../registry, ../oci
 * and ../errors; nothing imports it but cli/.
 */
export { mutateImage, type MutateOptions, type Mutated } from './image.ts';
export { editConfig, type ConfigEdits } from './config.ts';
