/**
 * request: turns what a user wrote (CLI flags or action inputs, as strings) into the one typed
 * BuildRequest the engine runs. Both cli/ and action/ go through `makeBuildRequest`, so a flag and
 * the matching input mean exactly the same thing. Pure parsing: imports ../oci, ../errors and
 * ../registry (reference syntax) and ../ssh (key files) only, never the engine.
 */
export { isolationModes, layerCompressions, type LayerCompression, type LayerCompressionType, type BuildRequest, type Entitlements, type Isolation, type NamedContext, type NamedContextSource, type OutputSpec, type SecretSpec } from './types.ts';
export { contextLookup, contextName, parseBuildContexts } from './contexts.ts';
export { makeBuildRequest, defaultCacheDir, mergeIdFromEnv, type RawBuildOptions } from './make.ts';
export type { SshSpec } from './ssh.ts';
export { splitList, splitQuoted, parseKeyValue } from './parse.ts';
export { annotationLevels, type Annotation, type AnnotationLevel, type AttestRequest } from './types.ts';
export { checkLayerCompression } from './compression.ts';
