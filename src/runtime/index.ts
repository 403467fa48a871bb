/**
 * runtime: runs one RUN step through runc or crun — the OCI runtime spec (namespaces, mounts,
 * devices, capabilities), bind/cache/tmpfs/secret mounts, network modes, root and rootless mode —
 * and QEMU binfmt emulation for foreign platforms.
 */
export { detectRuntime, checkRootless, defaultSearchPath, type RuntimeInfo } from './detect.ts';
export { runStep, type RunStepOptions, type RunStepResult, type StepMount, type OutputSink } from './run.ts';
export { ensureEmulation, readHandler, type EmulationOptions, type HandlerState } from './emulation.ts';
export { buildSpec, withDefaultPath, defaultPath, defaultCapabilities, type SpecInput, type SpecMount } from './spec.ts';
export { resolveInRoot } from './rootpath.ts';
export { runStepPtrace, probePtrace, qemuForPlatform, prootInstallHint, type PtraceProbe } from './ptrace.ts';
export { chooseIsolation, probeRootMounts, probeUserNamespaces, type IsolationMode, type IsolationChoice, type ChooseOptions } from './isolation.ts';
