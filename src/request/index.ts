/**
 * request: turns what a user wrote (CLI flags or action inputs, as strings) into the one typed
 * BuildRequest the engine runs. Both cli/ and action/ go through `makeBuildRequest`, so a flag and
 * the matching input mean exactly the same thing.
 */
export type { BuildRequest, OutputSpec, SecretSpec } from './types.ts';
export { makeBuildRequest, type RawBuildOptions } from './make.ts';
export { parseCacheRef, parseOutputSpec, parseSecretSpec, parseKeyValue, splitList, splitQuoted, parseCsvFields } from './parse.ts';
