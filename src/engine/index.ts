/**
 * engine: runs a BuildRequest — plans each target platform with the Dockerfile frontend, runs the
 * stages as a DAG (scheduler.ts, each once), executes each instruction through its step module
 * (steps/) with the step cache (step-cache.ts, keys.ts), assembles manifests, configs and the
 * index (assemble.ts), then writes files or pushes (publish.ts). Reads no environment and no
 * action inputs: all comes in the request. Imports other folders only through their index.ts;
 * nothing under src/ but cli/, action/ and launch/ imports the engine.
 */
export { build, type BuildDeps, type BuildResult, type BuiltPlatform } from './build.ts';
export type { RegistryPort, BaseImage } from './ports.ts';
export { registryPort } from './registry-port.ts';
export { plainProgress, quietProgress, rawJsonProgress, type Progress, type StepReporter } from './progress.ts';
export { buildMetadata } from './metadata.ts';
export { check } from './checks.ts';
