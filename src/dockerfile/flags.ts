// Builder flags (`--name=value`) as BuildKit's BFlags parses them, the `RUN --mount` option list,
// and the small value parsers those need (Go durations, octal modes, RAM sizes, CSV fields).
import { UserError } from '../errors.ts';
import { editDistance } from '../suggest.ts';

type FlagType = 'bool' | 'string' | 'strings';

export interface FlagSpec { [name: string]: { type: FlagType; default?: string } }

export interface ParsedFlags {
  strings: Map<string, string>;
  lists: Map<string, string[]>;
  bools: Map<string, boolean>;
  /** Flags actually written, in order. */
  used: string[];
}

/** "did you mean X?" when one candidate is close (as BuildKit's suggest package). */
export function suggest(word: string, candidates: string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestD) { bestD = d; best = c; }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(w.length / 3)) ? best : undefined;
}

/** Parses `flags` against `spec`; throws a UserError naming the bad flag. */
export function parseFlags(flags: string[], spec: FlagSpec, instruction: string): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), lists: new Map(), bools: new Map(), used: [] };
  for (const arg of flags) {
    if (!arg.startsWith('--')) throw new UserError(`Arg "${arg}" must start with '--'`, { hint: `${instruction} flags are written --name=value` });
    if (arg === '--') break;
    const eq = arg.indexOf('=', 2);
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    const hasValue = eq >= 0;
    const f = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!f) {
      const names = Object.keys(spec);
      const allowed = names.length ? names.map((n) => '--' + n).join(', ') : 'none';
      const s = suggest(name, names);
      throw new UserError(`unknown flag: ${name}`, { hint: s ? `did you mean --${s}? (${instruction} accepts ${allowed})` : `${instruction} accepts ${allowed}` });
    }
    if (out.used.includes(name) && f.type !== 'strings') throw new UserError(`duplicate flag specified: ${name}`, { hint: `give --${name} once` });
    out.used.push(name);
    if (f.type === 'bool') {
      if (hasValue && value === '') throw new UserError(`missing a value on flag: ${name}`, { hint: `write --${name} or --${name}=true|false` });
      const v = value.toLowerCase();
      if (v === 'true' || v === '') out.bools.set(name, true);
      else if (v === 'false') out.bools.set(name, false);
      else throw new UserError(`expecting boolean value for flag ${name}, not: ${value}`, { hint: `write --${name} or --${name}=true|false` });
    } else if (f.type === 'string') {
      if (!hasValue) throw new UserError(`missing a value on flag: ${name}`, { hint: `write --${name}=VALUE` });
      out.strings.set(name, value);
    } else {
      if (!hasValue) throw new UserError(`missing a value on flag: ${name}`, { hint: `write --${name}=VALUE` });
      const l = out.lists.get(name) ?? [];
      l.push(value);
      out.lists.set(name, l);
    }
  }
  for (const [n, f] of Object.entries(spec)) {
    if (f.type === 'string' && !out.strings.has(n) && f.default !== undefined) out.strings.set(n, f.default);
  }
  return out;
}

const UNIT_NS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds. */
export function parseGoDuration(text: string): number {
  const bad = (): never => { throw new UserError(`time: invalid duration ${JSON.stringify(text)}`, { hint: 'durations look like 30s, 1m30s, 500ms or 1h' }); };
  let s = text;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') bad();
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(\.[0-9]*)?/.exec(s)!;
    if (m[0] === '' || m[0] === '.') bad();
    s = s.slice(m[0].length);
    const u = /^[^0-9.]+/.exec(s);
    if (!u) throw new UserError(`time: missing unit in duration ${JSON.stringify(text)}`, { hint: 'durations look like 30s, 1m30s, 500ms or 1h' });
    const unit = UNIT_NS[u[0]];
    if (unit === undefined) throw new UserError(`time: unknown unit ${JSON.stringify(u[0])} in duration ${JSON.stringify(text)}`, { hint: 'units are ns, us, ms, s, m, h' });
    s = s.slice(u[0].length);
    total += Number(m[0]) * unit;
  }
  return Math.round(neg ? -total : total);
}

/** Go's time.Duration.String() for nanoseconds. */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  const sign = neg ? '-' : '';
  const frac = (v: number, digits: number): string => {
    const s = v.toString().padStart(digits, '0').replace(/0+$/, '');
    return s ? '.' + s : '';
  };
  if (u < 1e9) {
    if (u < 1e3) return `${sign}${u}ns`;
    if (u < 1e6) return `${sign}${Math.floor(u / 1e3)}${frac(u % 1e3, 3)}µs`;
    return `${sign}${Math.floor(u / 1e6)}${frac(u % 1e6, 6)}ms`;
  }
  const secNs = u % 60e9;
  const secs = `${Math.floor(secNs / 1e9)}${frac(secNs % 1e9, 9)}s`;
  u = Math.floor(u / 60e9);
  if (u === 0) return sign + secs;
  const mins = u % 60;
  const hours = Math.floor(u / 60);
  return hours > 0 ? `${sign}${hours}h${mins}m${secs}` : `${sign}${mins}m${secs}`;
}

/** docker/go-units RAMInBytes: `64m`, `1g`, `512kb`, plain bytes. */
export function parseRAMBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(text);
  if (!m) throw new UserError(`invalid size: '${text}'`, { hint: 'sizes look like 64m, 1g or 1048576' });
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.floor(Number.parseFloat(m[1]) * (m[2] ? mult[m[2].toLowerCase()] : 1));
}

/** One CSV record as Go's encoding/csv reads it (double quotes, `""` inside quotes). */
export function parseCsvRecord(text: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new UserError(`parse error: extraneous or missing " in quoted-field: ${text}`, { hint: 'close the double quote in the --mount value' });
        if (text[i] === '"') {
          if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw new UserError(`parse error: extraneous or missing " in quoted-field: ${text}`, { hint: 'a quoted field must end at a comma' });
    } else {
      const j = text.indexOf(',', i);
      field = j < 0 ? text.slice(i) : text.slice(i, j);
      if (field.includes('"')) throw new UserError(`parse error: bare " in non-quoted-field: ${text}`, { hint: 'quote the whole field: "target=/a,b"' });
      i = j < 0 ? text.length : j;
    }
    fields.push(field);
    if (i >= text.length) break;
    i++; // the comma
  }
  return fields;
}

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

/** A `RUN --mount` as written (values not yet expanded), before defaults. */
export interface MountSpec {
  type: MountType;
  target?: string;
  source?: string;
  from?: string;
  /** Explicit read-only setting; undefined means the type's default (bind/secret/ssh: ro, cache/tmpfs: rw). */
  readOnly?: boolean;
  /** cache: id; secret/ssh: id. */
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  required?: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** secret: expose as this environment variable. */
  env?: string;
}

const MOUNT_TYPES: MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

function parseBoolValue(v: string, key: string): boolean {
  const l = v.toLowerCase();
  if (['1', 't', 'true'].includes(l)) return true;
  if (['0', 'f', 'false'].includes(l)) return false;
  throw new UserError(`invalid value for ${key}: ${v}`, { hint: `${key} takes true or false` });
}

function parseUint(v: string, base: 8 | 10, what: string): number {
  const re = base === 8 ? /^(0o?)?[0-7]+$/i : /^[0-9]+$/;
  if (!re.test(v)) throw new UserError(`invalid value ${v} for ${what}`, { hint: base === 8 ? `${what} is octal, e.g. 0755` : `${what} is a number` });
  const n = Number.parseInt(v.replace(/^0o/i, ''), base);
  if (n > 0xffffffff) throw new UserError(`invalid value ${v} for ${what}`, { hint: 'value out of range' });
  return n;
}

/**
 * Parses one `--mount=…` value. `expand` (optional) expands each value as BuildKit does at
 * dispatch time; without it values are kept as written.
 */
export function parseMount(text: string, expand?: (word: string) => string): MountSpec {
  const m: MountSpec = { type: 'bind' };
  for (const field of parseCsvRecord(text)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') { m.readOnly = true; continue; }
      if (key === 'readwrite' || key === 'rw') { m.readOnly = false; continue; }
      if (key === 'required') {
        if (m.type === 'secret' || m.type === 'ssh') { m.required = true; continue; }
        throw new UserError(`unexpected key '${key}' for mount type '${m.type}'`, { hint: 'required applies to type=secret and type=ssh' });
      }
      throw new UserError(`invalid field '${field}' must be a key=value pair`, { hint: 'mount options are written key=value, e.g. type=cache,target=/root/.cache' });
    }
    let value = field.slice(eq + 1);
    // BuildKit expands mount values at dispatch, except from= (moby/buildkit#2089, #2412).
    if (expand && key !== 'from') value = expand(value);
    switch (key) {
      case 'type': {
        const t = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(t)) {
          const s = suggest(value, MOUNT_TYPES);
          throw new UserError(`unsupported mount type "${value}"`, { hint: s ? `did you mean ${s}? (types: ${MOUNT_TYPES.join(', ')})` : `types: ${MOUNT_TYPES.join(', ')}` });
        }
        m.type = t;
        break;
      }
      case 'target': case 'dst': case 'destination': case 'dest': m.target = value; break;
      case 'readonly': case 'ro': m.readOnly = parseBoolValue(value, key); break;
      case 'readwrite': case 'rw': m.readOnly = !parseBoolValue(value, key); break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh') throw new UserError(`unexpected key '${key}' for mount type '${m.type}'`, { hint: 'required applies to type=secret and type=ssh' });
        m.required = parseBoolValue(value, key);
        break;
      case 'id': m.id = value; break;
      case 'sharing': {
        const v = value.toLowerCase();
        if (v !== '' && v !== 'shared' && v !== 'private' && v !== 'locked') throw new UserError(`unsupported sharing value "${value}"`, { hint: 'sharing is shared, private or locked' });
        if (v !== '') m.sharing = v as CacheSharing;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'mode': m.mode = parseUint(value, 8, 'mode'); break;
      case 'uid': m.uid = parseUint(value, 10, 'uid'); break;
      case 'gid': m.gid = parseUint(value, 10, 'gid'); break;
      case 'size':
        if (m.type !== 'tmpfs') throw new UserError(`unexpected key '${key}' for mount type '${m.type}'`, { hint: 'size applies to type=tmpfs' });
        m.size = parseRAMBytes(value);
        break;
      case 'env':
        if (m.type !== 'secret') throw new UserError(`unexpected key '${key}' for mount type '${m.type}'`, { hint: 'env applies to type=secret' });
        m.env = value;
        break;
      default:
        throw new UserError(`unexpected key '${key}' in '${field}'`, { hint: 'mount keys: type, target, source, from, readonly, id, sharing, mode, uid, gid, required, size, env' });
    }
  }
  const fileInfo = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfo) {
    for (const k of ['mode', 'uid', 'gid'] as const) {
      if (m[k] !== undefined) throw new UserError(`${k} not allowed for "${m.type}" type mounts`, { hint: `${k} applies to cache, secret and ssh mounts` });
    }
  }
  if (m.sharing !== undefined && m.type !== 'cache') throw new UserError(`invalid cache sharing set for ${m.type} mount`, { hint: 'sharing applies to type=cache' });
  if (m.type === 'secret' || m.type === 'ssh') {
    if (m.from !== undefined) throw new UserError(`${m.type} mount should not have a from`, { hint: `remove from= from the ${m.type} mount` });
    if (m.source !== undefined && m.type === 'ssh') throw new UserError('ssh source not allowed', { hint: 'remove source= from the ssh mount' });
  }
  if (m.type === 'tmpfs' && (m.from !== undefined || m.source !== undefined)) throw new UserError('tmpfs mount does not take from or source', { hint: 'remove from=/source= from the tmpfs mount' });
  if ((m.type === 'bind' || m.type === 'cache' || m.type === 'tmpfs') && !m.target) {
    throw new UserError(`mount type ${m.type} requires a target`, { hint: 'add target=/path' });
  }
  if (m.type === 'secret' && m.id === undefined && m.source === undefined && m.target === undefined && m.env === undefined) {
    throw new UserError('secret mount requires an id or a target', { hint: 'add id=NAME' });
  }
  return m;
}

/** A mount with BuildKit's defaults filled in (convert_runmount.go / convert_secrets.go / convert_ssh.go). */
export interface Mount {
  type: MountType;
  target: string;
  /** bind/cache: path inside `from` (or the context); secret: unused. */
  source: string;
  /** bind/cache: stage name, stage index, or image ref; empty = the build context (bind) or nothing (cache). */
  from?: string;
  readOnly: boolean;
  /** cache: the cache id (defaults to target); secret/ssh: the id. */
  id: string;
  sharing: CacheSharing;
  mode: number;
  uid: number;
  gid: number;
  required: boolean;
  size?: number;
  env?: string;
}

/** Fills in defaults; `sshIndex` numbers SSH sockets in one RUN (ssh_agent.0, .1, …). */
export function mountWithDefaults(s: MountSpec, sshIndex = 0): Mount {
  const ro = s.readOnly ?? !(s.type === 'cache' || s.type === 'tmpfs');
  const base = { type: s.type, from: s.from, readOnly: ro, uid: s.uid ?? 0, gid: s.gid ?? 0, required: s.required ?? false, size: s.size, env: s.env };
  switch (s.type) {
    case 'secret': {
      let id = s.id ?? s.source ?? '';
      if (id === '' && s.target) id = s.target.split('/').filter(Boolean).pop() ?? '';
      const target = s.target ?? (s.env !== undefined ? '' : '/run/secrets/' + (id.split('/').pop() ?? id));
      return { ...base, target, source: '', id, sharing: 'shared', mode: s.mode ?? 0o400 };
    }
    case 'ssh':
      return { ...base, target: s.target ?? `/run/buildkit/ssh_agent.${sshIndex}`, source: '', id: s.id ?? 'default', sharing: 'shared', mode: s.mode ?? 0o600 };
    case 'cache':
      return { ...base, target: s.target!, source: s.source ?? '', id: s.id ?? s.target!, sharing: s.sharing ?? 'shared', mode: s.mode ?? 0o755 };
    default:
      return { ...base, target: s.target!, source: s.source ?? '', id: '', sharing: 'shared', mode: 0 };
  }
}

/** One `RUN --device` value: a CDI device name (`vendor.com/class=name`, a class, or `*`), optional unless required. */
export interface DeviceSpec { name: string; required: boolean }

/** `RUN --device=NAME[,required[=BOOL]]` (or name=NAME), as BuildKit's instructions.ParseDevice reads it. */
export function parseDevice(text: string): DeviceSpec {
  const d: DeviceSpec = { name: '', required: false };
  for (const field of parseCsvRecord(text)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'required') d.required = true;
      else if (d.name === '') d.name = field;
      else throw new UserError(`invalid field '${field}' must be a key=value pair`, { hint: 'write --device=NAME[,required=true]' });
      continue;
    }
    const value = field.slice(eq + 1);
    if (key === 'name') {
      if (d.name !== '') throw new UserError(`device name already set to ${d.name}`, { hint: 'name the device once' });
      d.name = value;
    } else if (key === 'required') {
      d.required = parseBoolValue(value, key);
    } else if (d.name === '') {
      d.name = field; // a CDI name holds "=": vendor.com/class=name
    } else {
      const s = suggest(key, ['name', 'required']);
      throw new UserError(`unexpected key '${key}' in '${field}'${s ? ` (did you mean ${s}?)` : ''}`, { hint: '--device takes name= and required=' });
    }
  }
  if (d.name === '') throw new UserError(`--device=${text} names no device`, { hint: 'write --device=vendor.com/class=name' });
  return d;
}
