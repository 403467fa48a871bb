/**
 * runtime: runs one RUN step — through runc or crun (the OCI runtime spec: namespaces, mounts,
 * devices, capabilities; root or rootless), or through proot (ptrace, no privileges at all) — with
 * bind/cache/tmpfs/secret mounts and network modes, QEMU for foreign platforms (binfmt, or proot -q),
 * and the choice among those isolation modes (isolation.ts), probed once; BuildKit's insecure mode
 * (privileged.ts) and CDI devices (cdi.ts), which only runc/crun as root can give a step. Imports ../fs (paths inside a root), ../oci and
 * ../errors; knows nothing of images, layers or the build.
 */
export type { RuntimeInfo } from './detect.ts';
export { runStep, type RunStepOptions, type StepOptions, type RunStepResult, type StepMount } from './run.ts';
export { defaultPath } from './spec.ts';
export { runStepPtrace } from './ptrace/index.ts';
export { cdiEdits, defaultCdiSpecDirs, loadCdiRegistry, resolveCdiDevices, type CdiEdits, type CdiRegistry, type DeviceGrant, type DeviceRequest } from './cdi.ts';
export { prepareIsolation, chooseIsolation, type IsolationMode, type IsolationChoice } from './isolation.ts';
