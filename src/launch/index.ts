/**
 * launch: what cli/ and action/ share to start work — slipway's version, and one build run with a
 * registry client that stops the steps and cleans up on SIGINT/SIGTERM (Ctrl-C, a cancelled CI
 * job) before the process goes. Imports engine/ and registry/ through their doors.
 */
export { version } from './version.ts';
export { runBuild, runCheck, InterruptedError } from './run-build.ts';
