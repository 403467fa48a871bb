// Shared helpers for benchmarks: timing, a table that prints each peer's figure as a ratio, the
// BENCH_SMALL size knob, the speed targets (each a met/MISSED row, gathered for the closing
// table of `npm run bench`), and the peak RSS of a child process.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Row { name: string; seconds: number; bytes?: number; note?: string }

/** BENCH_SMALL=1 shrinks every benchmark's sizes (files, bytes) to smoke-test the rows in minutes. */
export const small = process.env.BENCH_SMALL === '1';

/** `full` at the sizes the issue names, `full / divisor` (rounded, at least 1) under BENCH_SMALL=1. */
export function scaled(full: number, divisor = 20): number {
  return small ? Math.max(1, Math.round(full / divisor)) : full;
}

export async function time<T>(fn: () => Promise<T> | T): Promise<{ seconds: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - start) / 1000, value };
}

/** Runs a shell command, failing loudly; returns wall seconds. */
export function timeShell(command: string, env: NodeJS.ProcessEnv = process.env): number {
  const start = performance.now();
  const r = spawnSync('bash', ['-c', command], { stdio: ['ignore', 'ignore', 'pipe'], env });
  if (r.status !== 0) throw new Error(`benchmark command failed (${r.status}): ${command}\n${r.stderr}`);
  return (performance.now() - start) / 1000;
}

export function hasCommand(name: string): boolean {
  return spawnSync('bash', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

/** Prints rows with throughput and each row's time as a ratio to the first (slipway) row. */
export function printTable(title: string, rows: Row[]): void {
  const base = rows[0];
  console.log(`\n${title}`);
  console.log(`  ${'tool'.padEnd(44)} ${'seconds'.padStart(9)} ${'MB/s'.padStart(9)} ${'× slipway time'.padStart(15)}`);
  for (const r of rows) {
    const mbps = r.bytes ? (r.bytes / 1e6 / r.seconds).toFixed(1) : '';
    const ratio = base ? (r.seconds / base.seconds).toFixed(2) : '';
    console.log(`  ${r.name.padEnd(44)} ${r.seconds.toFixed(3).padStart(9)} ${mbps.padStart(9)} ${ratio.padStart(15)}${r.note ? '  ' + r.note : ''}`);
  }
}

/**
 * One speed target of issue 17: `value` (slipway's figure as a ratio or share, or its peak RSS)
 * against `limit`, met when `value <= limit` (`at most`) or `value >= limit` (`at least`).
 * `figures` is what the value was computed from (slipway s, docker s, buildah s, MB/s …).
 */
export interface Target {
  name: string;
  figures: string;
  value: number | undefined;
  limit: number;
  kind: 'at most' | 'at least';
  unit: '×' | '%' | 'MB';
  /** Why there is no value (a peer missing, a build failed). */
  why?: string;
}

const recorded: Target[] = [];

const show = (v: number, unit: Target['unit']) => unit === '%' ? `${(v * 100).toFixed(0)} %` : unit === 'MB' ? `${v.toFixed(0)} MB` : `${v.toFixed(2)}×`;

export function verdict(t: Target): string {
  if (t.value === undefined || !Number.isFinite(t.value)) return `—  (${t.why ?? 'not measured'})`;
  const met = t.kind === 'at most' ? t.value <= t.limit : t.value >= t.limit;
  return met ? 'met' : 'MISSED';
}

/** Prints a targets table (and keeps the rows for the closing table of `npm run bench`). */
export function printTargets(title: string, targets: Target[]): void {
  recorded.push(...targets);
  console.log(`\n${title}`);
  printTargetRows(targets);
}

function printTargetRows(targets: Target[]): void {
  console.log(`  ${'target'.padEnd(50)} ${'figures'.padEnd(64)} ${'value'.padStart(9)} ${'target'.padStart(10)}  verdict`);
  for (const t of targets) {
    const value = t.value === undefined || !Number.isFinite(t.value) ? '—' : show(t.value, t.unit);
    const limit = `${t.kind === 'at most' ? '≤' : '≥'} ${show(t.limit, t.unit)}`;
    console.log(`  ${t.name.padEnd(50)} ${t.figures.padEnd(64)} ${value.padStart(9)} ${limit.padStart(10)}  ${verdict(t)}`);
  }
}

/** Every target row printed in this run, once more together (called at the end of `npm run bench`). */
export function printAllTargets(): void {
  if (recorded.length === 0) return;
  const met = recorded.filter((t) => verdict(t) === 'met').length;
  console.log(`\n### targets (issue 17): ${met} of ${recorded.length} met${small ? ' — BENCH_SMALL=1: reduced sizes, not the issue\'s' : ''}`);
  printTargetRows(recorded);
}

/** `a ÷ b` when both are known. */
export const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b;

export const secs = (s: number | undefined): string => (s === undefined ? '—' : s.toFixed(2));

/**
 * Runs a command (argv, no shell) and samples its VmHWM (peak resident set) from
 * /proc/PID/status every 20 ms until it exits; VmHWM only grows, so the last sample is the peak up
 * to 20 ms before the end. Returns wall seconds and the peak in bytes; rejects on a non-zero exit.
 */
export function runWithPeakRss(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; peakRss: number; output: string }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => { output = (output + d.toString()).slice(-4000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let peak = 0;
    const sample = () => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch { /* exited between samples */ }
    };
    const timer = setInterval(sample, 20);
    child.on('error', (err) => { clearInterval(timer); reject(err); });
    child.on('close', (code) => {
      clearInterval(timer);
      if (code === 0) resolve({ seconds: (performance.now() - start) / 1000, peakRss: peak, output });
      else reject(new Error(`${argv.join(' ')} failed (${code}): ${output.trim().slice(-2000)}`));
    });
  });
}
