// `slipway cache du` and `slipway cache prune`: what the local cache dir holds, and shrinking it
// by age and by a size budget (buildx's `du` / `prune --keep-storage --filter until=`), least
// recently used first. `--cache-max-size` on `slipway build` runs the same budget after a build.
import { UserError } from '../errors.ts';
import { diskUsage, pruneCache, type CachePruneResult } from '../cache/index.ts';
import { defaultCacheDir } from '../request/index.ts';
import { resolve } from 'node:path';
import { parseFlags, type Command, type CommandIO } from './command.ts';

const help = `Usage: slipway cache du [--cache-dir DIR]
       slipway cache prune [--keep-storage SIZE] [--filter until=DURATION] [--cache-dir DIR]

du prints what the cache dir holds: layer blobs, extracted layers, RUN cache mounts, temps left by
killed builds, and the step records. prune removes least recently used entries: all of them, only
those last used more than DURATION ago (--filter until=24h), and/or until at most SIZE remain
(--keep-storage 2GB). Step records whose layer was removed go with it.

Options:
  --cache-dir DIR             The cache dir (default: $XDG_CACHE_HOME/slipway or ~/.cache/slipway)
  --keep-storage SIZE         prune: keep at most SIZE (bytes, or with a unit: 512MB, 2GB, 1.5GiB)
  --filter until=DURATION     prune: only entries unused for DURATION (Go syntax: 90m, 24h, 1h30m)
  -h, --help                  Show this help
`;

const units: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `2GB`, `512m`, `1.5GiB`, `1000` → bytes (units of 1024, as docker and buildx read them). */
export function parseSize(text: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? units[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UserError(`${flag} "${text}": expected a size such as 500MB, 2GB or 1073741824`);
  return Math.floor(Number(m[1]) * unit);
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000 };

/** Go durations (`90s`, `10m`, `24h`, `1h30m`) → milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const t = text.trim();
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (t === '' || parts.map((p) => p[0]).join('') !== t) throw new UserError(`${flag} "${text}": expected a duration such as 30m, 24h or 1h30m`);
  return parts.reduce((n, p) => n + Number(p[1]) * durationUnits[p[2]], 0);
}

export function formatBytes(n: number): string {
  const steps = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < steps.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${n}B` : `${v.toFixed(1)}${steps[i]}`;
}

export function describePrune(r: CachePruneResult): string {
  return `removed ${r.removed} entries (${formatBytes(r.freedBytes)}) and ${r.droppedKeys} step records; ${formatBytes(r.keptBytes)} kept`;
}

function cacheDirOf(value: string | undefined): string {
  return value ? resolve(value) : defaultCacheDir(process.env);
}

async function du(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseFlags('cache du', argv, { 'cache-dir': { type: 'string' } });
  if (positionals.length > 0) throw new UserError(`slipway cache du takes no arguments (got "${positionals[0]}")`, { hint: "see 'slipway cache --help'" });
  const dir = cacheDirOf(values['cache-dir']);
  const u = await diskUsage(dir);
  const rows: [string, string, string][] = [
    ['layer blobs', String(u.units.blob.count), formatBytes(u.units.blob.bytes)],
    ['extracted layers', String(u.units.snapshot.count), formatBytes(u.units.snapshot.bytes)],
    ['cache mounts', String(u.units.mount.count), formatBytes(u.units.mount.bytes)],
    ['temps', String(u.units.temp.count), formatBytes(u.units.temp.bytes)],
    ['step records', String(u.keys), ''],
  ];
  io.stdout.write(`${'KIND'.padEnd(18)}${'COUNT'.padStart(7)}  SIZE\n`);
  for (const [k, c, s] of rows) io.stdout.write(`${k.padEnd(18)}${c.padStart(7)}  ${s}\n`);
  io.stdout.write(`Total: ${formatBytes(u.totalBytes)} in ${dir}\n`);
  return 0;
}

async function prune(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseFlags('cache prune', argv, {
    'cache-dir': { type: 'string' }, 'keep-storage': { type: 'string' }, filter: { type: 'string', multiple: true },
  });
  if (positionals.length > 0) throw new UserError(`slipway cache prune takes no arguments (got "${positionals[0]}")`, { hint: "see 'slipway cache --help'" });
  let olderThanMs: number | undefined;
  for (const f of values.filter ?? []) {
    const m = /^until=(.*)$/.exec(f);
    if (!m) throw new UserError(`--filter "${f}": the only filter is until=DURATION (e.g. until=24h)`);
    olderThanMs = parseDuration(m[1], '--filter until');
  }
  const keepBytes = values['keep-storage'] === undefined ? undefined : parseSize(values['keep-storage'], '--keep-storage');
  const dir = cacheDirOf(values['cache-dir']);
  io.stdout.write(`${describePrune(await pruneCache(dir, { keepBytes, olderThanMs }))} in ${dir}\n`);
  return 0;
}

export const cacheCommand: Command = {
  name: 'cache',
  summary: 'Show (du) or shrink (prune) the local layer cache',
  help,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub === 'du') return du(rest, io);
    if (sub === 'prune') return prune(rest, io);
    throw new UserError(`slipway cache: expected "du" or "prune"${sub ? `, got "${sub}"` : ''}`, { hint: "see 'slipway cache --help'" });
  },
};
