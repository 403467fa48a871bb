// The image config as BuildKit's dockerfile2llb builds it: the empty image for `FROM scratch`, and
// how each metadata instruction changes `config` (pure functions, no I/O).
import type { ExpandedInstruction } from '../dockerfile/index.ts';
import type { ContainerConfig, HealthConfig, ImageConfig, Platform } from '../oci/index.ts';
import { defaultPath } from '../runtime/index.ts';

/** BuildKit's emptyImage: what `FROM scratch` starts from. */
export function scratchConfig(platform: Platform): ImageConfig {
  const cfg: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: { Env: [`PATH=${defaultPath}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) cfg.variant = platform.variant;
  return cfg;
}

function setEnv(env: string[], key: string, value: string): string[] {
  const out = env.filter((kv) => kv.slice(0, kv.indexOf('=') < 0 ? kv.length : kv.indexOf('=')) !== key);
  const at = env.findIndex((kv) => kv.startsWith(key + '='));
  const entry = `${key}=${value}`;
  if (at < 0) return [...out, entry];
  out.splice(at, 0, entry);
  return out;
}

/**
 * Applies one metadata instruction to the container config (a copy is returned). Instructions that
 * make layers (RUN, COPY, ADD) and ARG change nothing here, except WORKDIR's path.
 */
export function applyInstruction(config: ContainerConfig, ins: ExpandedInstruction, cmdSetInStage = false): ContainerConfig {
  const c: ContainerConfig = structuredClone(config);
  switch (ins.kind) {
    case 'ENV':
      for (const p of ins.pairs) c.Env = setEnv(c.Env ?? [], p.key, p.value);
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const p of ins.pairs) c.Labels[p.key] = p.value;
      break;
    case 'WORKDIR':
      c.WorkingDir = ins.path;
      break;
    case 'USER':
      c.User = ins.user;
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of ins.volumes) c.Volumes[v] = {};
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of ins.ports) c.ExposedPorts[p] = {};
      break;
    case 'STOPSIGNAL':
      c.StopSignal = ins.signal;
      break;
    case 'CMD':
      c.Cmd = ins.args;
      c.ArgsEscaped = true;
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = ins.args;
      // An ENTRYPOINT resets a CMD inherited from the base (but not one set earlier in this stage).
      if (!cmdSetInStage) c.Cmd = undefined;
      c.ArgsEscaped = true;
      break;
    case 'SHELL':
      c.Shell = ins.shell;
      break;
    case 'HEALTHCHECK':
      c.Healthcheck = healthcheck(ins.health);
      break;
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), ins.expression];
      break;
    case 'MAINTAINER':
    case 'ARG':
    case 'RUN':
    case 'COPY':
    case 'ADD':
      break;
  }
  return c;
}

/** Docker's HealthConfig JSON: Go's omitempty drops zero durations and retries. */
function healthcheck(h: Extract<ExpandedInstruction, { kind: 'HEALTHCHECK' }>['health']): HealthConfig {
  const out: HealthConfig = { Test: h.test };
  if (h.interval) out.Interval = h.interval;
  if (h.timeout) out.Timeout = h.timeout;
  if (h.startPeriod) out.StartPeriod = h.startPeriod;
  if (h.startInterval) out.StartInterval = h.startInterval;
  if (h.retries) out.Retries = h.retries;
  return out;
}

/** Orders the config's keys as Docker/BuildKit write them, dropping empty optional members. */
export function tidyConfig(c: ContainerConfig): ContainerConfig {
  const order: (keyof ContainerConfig)[] = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'];
  const out: Record<string, unknown> = {};
  for (const k of order) {
    const v = c[k];
    if (v === undefined || v === null || v === '') continue;
    if (k === 'ArgsEscaped' && v !== true) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as ContainerConfig;
}
