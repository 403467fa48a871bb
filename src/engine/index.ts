/**
 * engine: runs a BuildRequest — plans each target platform with the Dockerfile frontend, runs the
 * stages as a DAG (each once), executes instructions with the layer cache, assembles manifests,
 * configs and the index, then writes files or pushes. Reads no environment: all comes in the request.
 */
export { build, type BuildDeps, type BuildResult, type BuiltPlatform } from './build.ts';
export type { RegistryPort, ResolvedImage } from './ports.ts';
export { plainProgress, quietProgress, type Progress, type StepReporter } from './progress.ts';
export { buildMetadata } from './metadata.ts';
