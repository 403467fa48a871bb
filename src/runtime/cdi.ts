// CDI (Container Device Interface) devices for RUN --device, as BuildKit's CDI manager resolves
// them: spec files (JSON, or the block YAML of yaml.ts) in the spec dirs, later dirs winning; a
// device named `vendor/class=name`, `vendor/class` (the first of the class), `vendor/class=*` (all
// of it), or by its class annotation;
// the `device` entitlement (or an autoallow annotation) to use one; and the container edits
// (device nodes, env, mounts) a step gets. Hooks, net devices, Intel RDT and extra gids are refused.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, posix } from 'node:path';
import { UserError } from '../errors.ts';
import { parseYaml } from './yaml.ts';

/** BuildKit's default spec dirs (buildkitd's appdefaults.CDISpecDirs). */
export const defaultCdiSpecDirs = ['/etc/cdi', '/var/run/cdi', '/etc/buildkit/cdi'];

const classAnnotation = 'org.mobyproject.buildkit.device.class';
const autoAllowAnnotation = 'org.mobyproject.buildkit.device.autoallow';

export interface CdiDeviceNode { path: string; type: 'b' | 'c' | 'p'; major: number; minor: number; fileMode?: number; uid?: number; gid?: number; permissions: string }
export interface CdiMount { hostPath: string; containerPath: string; type: string; options: string[] }
/** What the chosen devices add to a step's runtime spec. */
export interface CdiEdits { env: string[]; deviceNodes: CdiDeviceNode[]; mounts: CdiMount[] }

interface RawEdits { env?: unknown; deviceNodes?: unknown; mounts?: unknown; hooks?: unknown; netDevices?: unknown; intelRdt?: unknown; additionalGids?: unknown }
interface LoadedSpec { path: string; kind: string; annotations: Record<string, string>; edits: RawEdits; priority: number }
interface LoadedDevice { qualified: string; spec: LoadedSpec; annotations: Record<string, string>; edits: RawEdits }

export interface CdiRegistry {
  dirs: string[];
  devices: Map<string, LoadedDevice>;
  /** Spec files that could not be read, with why (BuildKit logs these and carries on). */
  errors: string[];
}

const vendorOrClass = /^[A-Za-z]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const deviceName = /^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Annotations are strings; a YAML `true` or a number is read as its text (as the CDI library's YAML decoding does). */
function annotationsOf(v: unknown): Record<string, string> {
  if (!isObject(v)) return {};
  return Object.fromEntries(Object.entries(v).filter(([, x]) => ['string', 'boolean', 'number'].includes(typeof x)).map(([k, x]) => [k, String(x)]));
}

function readSpec(path: string, priority: number): LoadedSpec & { devices: Array<{ name: string; annotations: Record<string, string>; edits: RawEdits }> } {
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    if (extname(path) !== '.yaml') throw new Error(`not valid JSON (${(e as Error).message})`, { cause: e });
    raw = parseYaml(text); // its YamlError says what it cannot read
  }
  if (!isObject(raw)) throw new Error('not a CDI spec object');
  if (typeof raw.cdiVersion !== 'string' || !/^\d+\.\d+\.\d+$/.test(raw.cdiVersion)) throw new Error(`invalid version ${JSON.stringify(raw.cdiVersion)}`);
  const kind = typeof raw.kind === 'string' ? raw.kind : '';
  const [vendor, cls, extra] = kind.split('/');
  if (!vendor || !cls || extra !== undefined || !vendorOrClass.test(vendor) || !vendorOrClass.test(cls)) throw new Error(`invalid kind ${JSON.stringify(raw.kind)} (expected vendor.com/class)`);
  if (!Array.isArray(raw.devices) || raw.devices.length === 0) throw new Error('invalid spec, no devices');
  const devices = raw.devices.map((d: unknown) => {
    // A YAML `name: 0` is the name "0", as the CDI library's YAML decoding reads it.
    const name = isObject(d) && typeof d.name === 'number' ? String(d.name) : isObject(d) ? d.name : undefined;
    if (!isObject(d) || typeof name !== 'string' || !deviceName.test(name)) throw new Error(`invalid device name ${JSON.stringify(isObject(d) ? d.name : d)}`);
    return { name, annotations: annotationsOf(d.annotations), edits: (isObject(d.containerEdits) ? d.containerEdits : {}) as RawEdits };
  });
  const names = new Set<string>();
  for (const d of devices) {
    if (names.has(d.name)) throw new Error(`invalid spec, multiple device "${d.name}"`);
    names.add(d.name);
  }
  return { path, kind, annotations: annotationsOf(raw.annotations), edits: (isObject(raw.containerEdits) ? raw.containerEdits : {}) as RawEdits, priority, devices };
}

/** Reads every `.json`/`.yaml` spec file of `dirs` (missing dirs are fine); a device of a later dir wins. */
export function loadCdiRegistry(dirs: readonly string[]): CdiRegistry {
  const devices = new Map<string, LoadedDevice>();
  const conflicts = new Set<string>();
  const errors: string[] = [];
  dirs.forEach((dir, priority) => {
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith('.json') || f.endsWith('.yaml')).sort();
    } catch {
      return;
    }
    for (const f of files) {
      const path = join(dir, f);
      if (!statSync(path, { throwIfNoEntry: false })?.isFile()) continue;
      try {
        const spec = readSpec(path, priority);
        for (const d of spec.devices) {
          const qualified = `${spec.kind}=${d.name}`;
          const old = devices.get(qualified);
          if (old && old.spec.priority === priority) {
            errors.push(`${path}: conflicting device "${qualified}" (also in ${old.spec.path})`);
            conflicts.add(qualified);
            continue;
          }
          devices.set(qualified, { qualified, spec, annotations: d.annotations, edits: d.edits });
        }
      } catch (e) {
        errors.push(`${path}: ${(e as Error).message}`);
      }
    }
  });
  for (const c of conflicts) devices.delete(c);
  return { dirs: [...dirs], devices, errors };
}

/** The devices one `--device` value names (BuildKit's parseDevice): [] when none is registered. */
function find(reg: CdiRegistry, name: string): string[] {
  const all = [...reg.devices.keys()];
  const eq = name.indexOf('=');
  const kind = eq < 0 ? name : name.slice(0, eq);
  const dev = eq < 0 ? '' : name.slice(eq + 1);
  let out: string[] = [];
  if (/^[^/]+\/[^/]+$/.test(kind)) {
    if (dev === '') out = all.filter((d) => d.startsWith(kind + '=')).slice(0, 1);
    else if (dev === '*') out = all.filter((d) => d.startsWith(kind + '='));
    else out = all.filter((d) => d === name);
  }
  if (out.length === 0) out = all.filter((d) => { const x = reg.devices.get(d)!; return ({ ...x.spec.annotations, ...x.annotations })[classAnnotation] === name; });
  return out;
}

function searched(reg: CdiRegistry): string {
  return `searched ${reg.dirs.join(', ')}${reg.errors.length ? `; spec files skipped: ${reg.errors.join('; ')}` : ''}`;
}

export interface DeviceRequest { name: string; required: boolean }
/** The `device` entitlement: all devices, or names (an alias maps to the device it stands for, else ''). */
export type DeviceGrant = { all: boolean; names: Record<string, string> } | undefined;

/**
 * The qualified devices a step gets, as BuildKit's entitlement check resolves them: aliases first,
 * a required device that is not registered is an error, an optional one a warning; each device must
 * be granted (`--allow device`, `--allow device=NAME`) or carry the autoallow annotation.
 */
export function resolveCdiDevices(reg: CdiRegistry, requested: readonly DeviceRequest[], grant: DeviceGrant, warn: (m: string) => void): string[] {
  const found: string[] = [];
  const granted = new Set<string>();
  for (const r of requested) {
    const alias = grant && Object.hasOwn(grant.names, r.name) ? grant.names[r.name] : undefined;
    const names = find(reg, alias || r.name);
    if (names.length === 0) {
      if (r.required) throw new UserError(`required device "${r.name}" is not registered`, { hint: `add a CDI spec that defines it (${searched(reg)}), or mark it optional with --device=${r.name},required=false` });
      warn(`Optional device "${r.name}" is not registered (${searched(reg)}); the step runs without it`);
      continue;
    }
    if (alias) for (const n of names) granted.add(n);
    found.push(...names);
  }
  for (const name of Object.keys(grant?.names ?? {})) if (!grant!.names[name]) for (const n of find(reg, name)) granted.add(n);
  const devices = [...new Set(found)];
  if (grant?.all) return devices;
  const forbidden = devices.filter((d) => {
    if (granted.has(d)) return false;
    const x = reg.devices.get(d)!;
    return !/^(1|t|true)$/i.test(({ ...x.spec.annotations, ...x.annotations })[autoAllowAnnotation] ?? '');
  });
  if (forbidden.length) {
    throw new UserError(forbidden.length === 1 ? `device ${forbidden[0]} is requested by the build but not allowed` : `devices ${forbidden.join(', ')} are requested by the build but not allowed`, {
      hint: `grant it with --allow device=${forbidden[0]} (action input allow), or every device with --allow device`,
    });
  }
  return devices;
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new Error(`${what} must be a list of strings`);
  return v as string[];
}

/** The host device's type and numbers (what CDI's fillMissingInfo takes from the host path). */
function hostDevice(path: string): { type: 'b' | 'c' | 'p'; major: number; minor: number; mode: number } | undefined {
  const st = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (!st) return undefined;
  const type = st.isBlockDevice() ? 'b' : st.isCharacterDevice() ? 'c' : st.isFIFO() ? 'p' : undefined;
  if (!type) return undefined;
  const r = st.rdev;
  return { type, major: Number(((r >> 8n) & 0xfffn) | ((r >> 32n) & ~0xfffn)), minor: Number((r & 0xffn) | ((r >> 12n) & ~0xffn)), mode: Number(st.mode & 0o7777n) };
}

function deviceNode(v: unknown, user: { uid: number; gid: number }): CdiDeviceNode {
  if (!isObject(v) || typeof v.path !== 'string' || v.path === '') throw new Error('a device node without a path');
  const path = posix.normalize(v.path);
  if (!path.startsWith('/dev/')) throw new Error(`device node ${v.path}: slipway creates CDI device nodes under /dev only`);
  const permissions = typeof v.permissions === 'string' ? v.permissions : '';
  if (!/^[rwm]*$/.test(permissions)) throw new Error(`device ${JSON.stringify(v.path)}: invalid permissions ${JSON.stringify(permissions)}`);
  let type = typeof v.type === 'string' ? v.type : '';
  if (type === 'u') type = 'c';
  if (!['', 'b', 'c', 'p'].includes(type)) throw new Error(`device ${JSON.stringify(v.path)}: invalid type ${JSON.stringify(v.type)}`);
  let major = typeof v.major === 'number' ? v.major : 0;
  let minor = typeof v.minor === 'number' ? v.minor : 0;
  let fileMode = typeof v.fileMode === 'number' ? v.fileMode : undefined;
  const hostPath = typeof v.hostPath === 'string' && v.hostPath !== '' ? v.hostPath : v.path;
  const minimal = type !== '' && (major !== 0 || type === 'p');
  const host = hostDevice(hostPath);
  if (!host && !minimal) throw new Error(`failed to stat CDI host device "${hostPath}" (no such device node)`);
  if (host) {
    fileMode ??= host.mode;
    if (!minimal) {
      if (type === '') type = host.type;
      if (type !== host.type) throw new Error(`CDI device ("${v.path}", "${hostPath}"), host type mismatch (${type}, ${host.type})`);
      if (major === 0) [major, minor] = [host.major, host.minor];
    }
  }
  const uid = typeof v.uid === 'number' ? v.uid : user.uid > 0 ? user.uid : undefined;
  const gid = typeof v.gid === 'number' ? v.gid : user.gid > 0 ? user.gid : undefined;
  return { path, type: type as 'b' | 'c' | 'p', major, minor, permissions: permissions || 'rwm', ...(fileMode !== undefined ? { fileMode } : {}), ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
}

function mount(v: unknown): CdiMount {
  if (!isObject(v) || typeof v.hostPath !== 'string' || v.hostPath === '') throw new Error('invalid mount, empty host path');
  if (typeof v.containerPath !== 'string' || !posix.isAbsolute(v.containerPath)) throw new Error('invalid mount, the container path must be absolute');
  if (!existsSync(v.hostPath)) throw new Error(`mount host path ${v.hostPath} does not exist`);
  const options = stringList(v.options, 'mount options');
  const type = typeof v.type === 'string' && v.type !== '' ? v.type : 'bind';
  return { hostPath: v.hostPath, containerPath: v.containerPath, type, options: type === 'bind' && !options.some((o) => o === 'bind' || o === 'rbind') ? ['rbind', ...options] : options };
}

function addEdits(out: CdiEdits, e: RawEdits, user: { uid: number; gid: number }): void {
  if (e.hooks !== undefined && !(Array.isArray(e.hooks) && e.hooks.length === 0)) throw new Error('it has hooks, which slipway does not run (a hook is a host program the runtime would start)');
  for (const k of ['netDevices', 'intelRdt', 'additionalGids'] as const) {
    if (e[k] !== undefined && !(Array.isArray(e[k]) && e[k].length === 0)) throw new Error(`it has ${k}, which slipway does not apply`);
  }
  for (const env of stringList(e.env, 'env')) {
    if (env.indexOf('=') <= 0) throw new Error(`invalid environment variable ${JSON.stringify(env)}`);
    out.env.push(env);
  }
  if (e.deviceNodes !== undefined && !Array.isArray(e.deviceNodes)) throw new Error('deviceNodes must be a list');
  for (const d of (e.deviceNodes as unknown[] | undefined) ?? []) {
    const node = deviceNode(d, user);
    out.deviceNodes = [...out.deviceNodes.filter((x) => x.path !== node.path), node];
  }
  if (e.mounts !== undefined && !Array.isArray(e.mounts)) throw new Error('mounts must be a list');
  for (const m of (e.mounts as unknown[] | undefined) ?? []) {
    const made = mount(m);
    out.mounts = [...out.mounts.filter((x) => x.containerPath !== made.containerPath), made];
  }
}

/** The container edits of `devices`: each spec's own edits once, then each device's. */
export function cdiEdits(reg: CdiRegistry, devices: readonly string[], user: { uid: number; gid: number }): CdiEdits {
  const out: CdiEdits = { env: [], deviceNodes: [], mounts: [] };
  const specs = new Set<LoadedSpec>();
  for (const name of devices) {
    const d = reg.devices.get(name)!;
    try {
      if (!specs.has(d.spec)) {
        specs.add(d.spec);
        addEdits(out, d.spec.edits, user);
      }
      addEdits(out, d.edits, user);
    } catch (e) {
      throw new UserError(`CDI device ${name} (${d.spec.path}): ${(e as Error).message}`, { hint: 'fix the CDI spec file, or drop the --device from the RUN instruction' });
    }
  }
  return out;
}
