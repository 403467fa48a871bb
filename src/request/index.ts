/**
 * request: turns what a user wrote (CLI flags or action inputs, as strings) into the one typed
 * BuildRequest the engine runs. Both cli/ and action/ go through `makeBuildRequest`, so a flag and
 * the matching input mean exactly the same thing. Also shared by both: the result's metadata and
 * registry access from the user's environment (docker config.json).
 */
export type { BuildRequest, OutputSpec, SecretSpec } from './types.ts';
export { makeBuildRequest, type RawBuildOptions } from './make.ts';
export { parseOutputSpec, parseSecretSpec, parseKeyValue, splitList, parseCsvFields } from './parse.ts';
export { buildMetadata } from './metadata.ts';
export { registryClientFromEnv, registryFromEnv } from './registry.ts';
