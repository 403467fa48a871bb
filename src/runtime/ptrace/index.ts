/**
 * runtime/ptrace: RUN steps through proot (ptrace) on a plain-directory rootfs, for hosts where
 * slipway may not mount or create namespaces (an ordinary CI container). Imports runtime's own
 * modules, ../../oci and ../../errors.
 */
export { runStepPtrace } from './run.ts';
export { probePtrace, qemuForPlatform, prootInstallHint, type PtraceProbe } from './probe.ts';
