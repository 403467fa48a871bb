// Memory benchmark: peak resident set of one `slipway build --push` (the bundled dist/cli.js, as
// users run it) for a 2 GiB single-file layer and for a 200,000-file context, each `FROM scratch`
// + one COPY, pushed to the local test registry. The peak is the child's VmHWM, sampled from
// /proc/PID/status (report.ts runWithPeakRss); worker threads count, as they share the process.
// Target (issue 17): each under 400 MB. BENCH_SMALL=1: a 100 MiB file and 10,000 files.
// The contexts are generated once under $TMPDIR/slipway-bench-memory[-small]/ from a fixed seed.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand, printTargets, runWithPeakRss, scaled, small, timeShell } from './report.ts';
import { startRegistry } from '../test/harness/registry.ts';

const root = join(tmpdir(), small ? 'slipway-bench-memory-small' : 'slipway-bench-memory');
const distCli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const srcCli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const LIMIT_MB = 400;

interface Case { name: string; context: string; dockerfile: string; summary: string }

/** Runs `make(dir)` once into `dir` (kept with a marker file); returns `dir`. */
function once(dir: string, make: (dir: string) => void): string {
  if (existsSync(`${dir}.complete`) && existsSync(dir)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  make(dir);
  writeFileSync(`${dir}.complete`, '');
  return dir;
}

/** A file of `size` incompressible, seeded bytes (AES-CTR over zeros), written 16 MiB at a time. */
function bigFile(path: string, size: number): void {
  const key = createHash('sha256').update('memory-big-file').digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(16 << 20);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; left -= zeros.length) writeSync(fd, cipher.update(zeros.subarray(0, Math.min(left, zeros.length))));
  } finally {
    closeSync(fd);
  }
}

function cases(): Case[] {
  mkdirSync(root, { recursive: true });
  const bytes = scaled(2 * 2 ** 30);
  const files = scaled(200_000);
  const big = once(join(root, 'big-file'), (dir) => bigFile(join(dir, 'big.bin'), bytes));
  const many = once(join(root, 'many-files'), (dir) => {
    for (let i = 0; i < files; i++) {
      const sub = join(dir, 'files', `d${String(i % 500).padStart(3, '0')}`);
      if (i < 500) mkdirSync(sub, { recursive: true });
      writeFileSync(join(sub, `f${i}.txt`), `file ${i}\n`);
    }
  });
  const dockerfile = (name: string, body: string) => {
    const path = join(root, `${name}.Dockerfile`);
    writeFileSync(path, `FROM scratch\n${body}\n`);
    return path;
  };
  return [
    { name: 'big-file', context: big, dockerfile: dockerfile('big-file', 'COPY big.bin /big.bin'), summary: `one ${bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${(bytes / 2 ** 20).toFixed(0)} MiB`} file layer` },
    { name: 'many-files', context: many, dockerfile: dockerfile('many-files', 'COPY files/ /files/'), summary: `${files.toLocaleString('en')}-file context` },
  ];
}

export default async function memoryBench(): Promise<void> {
  if (!hasCommand('docker-registry')) {
    console.log('skipped: needs docker-registry');
    return;
  }
  const gen = performance.now();
  const suite = cases();
  console.log(`contexts ready in ${((performance.now() - gen) / 1000).toFixed(1)} s under ${root}`);
  const bundled = process.env.BENCH_SLIPWAY_CLI !== 'src';
  if (bundled) timeShell('node scripts/build.mjs');
  const cli = bundled ? distCli : srcCli;
  const work = mkdtempSync(join(tmpdir(), 'slipway-bench-memory-run-'));
  const registry = await startRegistry();
  try {
    const rows = [];
    for (const c of suite) {
      const argv = [process.execPath, cli, 'build', '--progress', 'plain', '--cache-dir', join(work, `cache-${c.name}`),
        '--insecure-registry', registry.host, '-f', c.dockerfile, '-t', `${registry.host}/bench/memory-${c.name}:1`, '--push', c.context];
      try {
        const r = await runWithPeakRss(argv);
        const mb = r.peakRss / 1e6;
        console.log(`  ${c.name.padEnd(12)} ${c.summary}: build + push ${r.seconds.toFixed(2)} s, peak RSS ${mb.toFixed(0)} MB`);
        rows.push({ name: `memory: ${c.summary}`, figures: `build + push ${r.seconds.toFixed(1)} s, VmHWM`, value: mb, limit: LIMIT_MB, kind: 'at most' as const, unit: 'MB' as const });
      } catch (err) {
        console.log(`  ${c.name} failed: ${(err as Error).message.split('\n').slice(0, 6).join('\n')}`);
        rows.push({ name: `memory: ${c.summary}`, figures: '', value: undefined, limit: LIMIT_MB, kind: 'at most' as const, unit: 'MB' as const, why: 'build failed' });
      }
    }
    printTargets(`memory targets (peak RSS of slipway build --push, ${bundled ? 'dist/cli.js' : 'src/cli/main.ts'})`, rows);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
