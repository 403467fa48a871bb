// Shared helpers for benchmarks: timing, and a table that prints each peer's figure as a ratio.
import { spawnSync } from 'node:child_process';

export interface Row { name: string; seconds: number; bytes?: number; note?: string }

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
  console.log(`  ${'tool'.padEnd(34)} ${'seconds'.padStart(9)} ${'MB/s'.padStart(9)} ${'× slipway time'.padStart(15)}`);
  for (const r of rows) {
    const mbps = r.bytes ? (r.bytes / 1e6 / r.seconds).toFixed(1) : '';
    const ratio = base ? (r.seconds / base.seconds).toFixed(2) : '';
    console.log(`  ${r.name.padEnd(34)} ${r.seconds.toFixed(3).padStart(9)} ${mbps.padStart(9)} ${ratio.padStart(15)}${r.note ? '  ' + r.note : ''}`);
  }
}
