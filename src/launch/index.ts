/**
 * launch: what cli/ and action/ share to start work — slipway's version, the build context made a
 * directory (git and tarball URLs, stdin), and one build run with a registry client that stops the steps and cleans up on SIGINT/SIGTERM (Ctrl-C, a cancelled CI
 * job) before the process goes. Imports engine/, fs/, request/ and registry/ through their doors.
 */
export { version } from './version.ts';
export { runBuild, runCheck, InterruptedError } from './run-build.ts';
export { prepareContext, isRemoteContext, type PreparedContext, type ContextInput } from './context.ts';
