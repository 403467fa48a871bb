// Edits of an image config's container settings (crane mutate's flags), as pure functions.
import { UserError } from '../errors.ts';
import type { ImageConfig } from '../oci/index.ts';

export interface ConfigEdits {
  /** KEY=VALUE sets, KEY- unsets (crane's --env). */
  env?: string[];
  /** JSON array or a comma list; '' unsets. */
  entrypoint?: string;
  cmd?: string;
  workdir?: string;
  user?: string;
  /** KEY=VALUE sets, KEY- unsets. */
  labels?: string[];
  /** PORT[/PROTO] adds, PORT[/PROTO]- removes. */
  exposedPorts?: string[];
}

function argv(flag: string, text: string): string[] | undefined {
  if (text === '') return undefined;
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new UserError(`--${flag} ${text}: not a JSON array of strings`, { hint: `e.g. --${flag} '["/bin/app","--serve"]' or --${flag} /bin/app,--serve` });
    }
    if (!Array.isArray(parsed) || parsed.some((x) => typeof x !== 'string')) throw new UserError(`--${flag} ${text}: expected a JSON array of strings`);
    return parsed as string[];
  }
  return text.split(',');
}

function keyed(flag: string, items: string[], into: Record<string, string>): void {
  for (const item of items) {
    if (item.endsWith('-') && !item.includes('=')) {
      delete into[item.slice(0, -1)];
      continue;
    }
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UserError(`--${flag} "${item}": expected KEY=VALUE (or KEY- to remove it)`);
    into[item.slice(0, eq)] = item.slice(eq + 1);
  }
}

/** The config with the edits applied; everything else (rootfs, history, platform) as it was. */
export function editConfig(config: ImageConfig, edits: ConfigEdits): ImageConfig {
  const c = { ...(config.config ?? {}) } as NonNullable<ImageConfig['config']>;
  if (edits.env?.length) {
    const env: Record<string, string> = {};
    for (const e of c.Env ?? []) {
      const i = e.indexOf('=');
      env[i < 0 ? e : e.slice(0, i)] = i < 0 ? '' : e.slice(i + 1);
    }
    keyed('env', edits.env, env);
    c.Env = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  }
  if (edits.labels?.length) {
    const labels = { ...(c.Labels ?? {}) };
    keyed('label', edits.labels, labels);
    c.Labels = labels;
  }
  for (const [flag, field] of [['entrypoint', 'Entrypoint'], ['cmd', 'Cmd']] as const) {
    const text = edits[flag];
    if (text === undefined) continue;
    const v = argv(flag, text);
    if (v) c[field] = v;
    else delete c[field];
  }
  if (edits.workdir !== undefined) c.WorkingDir = edits.workdir;
  if (edits.user !== undefined) c.User = edits.user;
  if (edits.exposedPorts?.length) {
    const ports = { ...(c.ExposedPorts ?? {}) };
    for (const p of edits.exposedPorts) {
      const remove = p.endsWith('-');
      const raw = remove ? p.slice(0, -1) : p;
      if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/.test(raw)) throw new UserError(`--exposed-ports "${p}": expected PORT or PORT/tcp|udp|sctp (a trailing - removes it)`);
      const key = raw.includes('/') ? raw : `${raw}/tcp`;
      if (remove) delete ports[key];
      else ports[key] = {};
    }
    c.ExposedPorts = ports;
  }
  return { ...config, config: c };
}
