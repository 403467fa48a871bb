// The build benchmark's workloads: each is a Dockerfile in this folder plus a build context
// generated once under the temp dir from a fixed seed (same bytes on every machine and run, so runs
// compare), and one file that the "one-file change" scenario edits and then puts back.
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scaled, small } from '../report.ts';

export interface Workload {
  name: string;
  /** What it exercises, for the table titles. */
  summary: string;
  dockerfile: string;
  context: string;
  /** Context-relative path of the file the one-file-change scenario edits. */
  changeFile: string;
  /** The source of the final instruction (a COPY): the last-step-change scenario edits it. */
  lastStepFile?: string;
  platforms: string[];
  /** The scenarios timed (default: all three). */
  scenarios?: Array<'cold' | 'cached' | 'one-file change' | 'last-step change'>;
  /** Files and bytes in the context (for MB/s). */
  files: number;
  bytes: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const contextsRoot = join(tmpdir(), `slipway-bench-build-contexts-v3${small ? '-small' : ''}`);

/** Deterministic pseudo-random bytes: AES-CTR over zeros with a key taken from `seed`. */
function seededBytes(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return cipher.update(Buffer.alloc(length));
}

const words = ('const let function return import export from await async class extends new this if else for ' +
  'while switch case break continue try catch finally throw value result options request response buffer ' +
  'layer image digest manifest config platform stage context registry cache module index error message').split(' ');

/** Source-like text (compressible, as real sources are) of about `length` bytes. */
function seededText(seed: string, length: number): string {
  const noise = seededBytes(seed, length);
  let out = '';
  let line = '';
  for (let i = 0; out.length + line.length < length; i++) {
    line += words[noise[i % noise.length] % words.length] + (noise[(i * 7) % noise.length] % 9 === 0 ? ';' : ' ');
    if (line.length > 72) { out += line + '\n'; line = ''; }
  }
  return out + line + '\n';
}

function put(root: string, rel: string, data: string | Buffer): void {
  const path = join(root, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, data);
}

const generators: Record<string, (root: string) => void> = {
  // The 10,000-file / 200 MB context: 9,900 source files (100 modules × 99, 2-16 KB of
  // text, ~90 MB) and 99 binary assets of 1.1 MB (~109 MB). BENCH_SMALL=1: 5 modules, 5 assets.
  'copy-heavy': (root) => {
    put(root, 'package.json', JSON.stringify({ name: 'bench-app', version: '1.0.0', private: true }, null, 2) + '\n');
    for (let m = 0; m < scaled(100); m++) {
      for (let f = 0; f < 99; f++) {
        const id = `${String(m).padStart(2, '0')}-${String(f).padStart(4, '0')}`;
        const size = 2048 + (seededBytes(`size-${id}`, 2).readUInt16LE(0) % 14336);
        put(root, `src/mod-${String(m).padStart(2, '0')}/file-${String(f).padStart(4, '0')}.js`, seededText(`src-${id}`, size));
      }
    }
    for (let a = 0; a < scaled(99); a++) put(root, `assets/asset-${String(a).padStart(2, '0')}.bin`, seededBytes(`asset-${a}`, 1_100_000));
  },
  // 300 text files the builder stage checksums, compresses and bundles.
  'multi-stage': (root) => {
    for (let f = 0; f < 300; f++) put(root, `src/file-${String(f).padStart(4, '0')}.txt`, seededText(`ms-${f}`, 4096 + f * 37));
  },
  'run-heavy': (root) => {
    put(root, 'seed.txt', 'seed\n');
    put(root, 'late.txt', 'late\n');
    put(root, 'final.txt', 'final\n');
  },
  'two-platform': (root) => {
    put(root, 'hello.txt', 'hello from both platforms\n');
  },
  'run-steps-1': (root) => {
    put(root, 'marker.txt', 'marker\n');
  },
  'run-steps-21': (root) => {
    put(root, 'marker.txt', 'marker\n');
  },
};

function countTree(dir: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files++;
    bytes += statSync(join(entry.parentPath, entry.name)).size;
  }
  return { files, bytes };
}

/** Generates (or reuses) the context of `name`; returns its directory. */
function context(name: string): string {
  const dir = join(contextsRoot, name);
  const done = join(contextsRoot, `${name}.complete`);
  if (existsSync(done) && existsSync(dir)) return dir;
  mkdirSync(contextsRoot, { recursive: true });
  const work = `${dir}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
  generators[name](work);
  renameSync(work, dir);
  writeFileSync(done, '');
  return dir;
}

const specs: Array<Omit<Workload, 'dockerfile' | 'context' | 'files' | 'bytes'>> = [
  { name: 'copy-heavy', summary: `COPY of ~${small ? 500 : '10,000'} files / ~${small ? 10 : 200} MB onto busybox`, changeFile: 'src/mod-00/file-0000.js', platforms: ['linux/amd64'] },
  { name: 'multi-stage', summary: 'builder stage with 2 RUN, final FROM scratch + COPY --from', changeFile: 'src/file-0007.txt', platforms: ['linux/amd64'] },
  { name: 'run-heavy', summary: '10 RUN steps, 5 MB + 500 files each, whiteouts', changeFile: 'late.txt', lastStepFile: 'final.txt', platforms: ['linux/amd64'] },
  { name: 'two-platform', summary: 'linux/amd64 + linux/arm64 (QEMU), one RUN', changeFile: 'hello.txt', platforms: ['linux/amd64', 'linux/arm64'] },
  // The fixed cost of a RUN step: 21 trivial RUN steps against 1, cold; (21 − 1) ÷ 20 per step.
  { name: 'run-steps-1', summary: 'COPY + 1 trivial RUN (baseline of the per-step cost)', changeFile: 'marker.txt', platforms: ['linux/amd64'], scenarios: ['cold'] },
  { name: 'run-steps-21', summary: 'COPY + 21 trivial RUN steps', changeFile: 'marker.txt', platforms: ['linux/amd64'], scenarios: ['cold'] },
];

/** The workloads, their contexts generated on first use (`only` filters by name). */
export function workloads(only?: string[]): Workload[] {
  return specs
    .filter((s) => !only || only.length === 0 || only.some((o) => s.name.startsWith(o)))
    .map((s) => {
      const ctx = context(s.name);
      return { ...s, dockerfile: join(here, `${s.name}.Dockerfile`), context: ctx, ...countTree(ctx) };
    });
}

/** Edits `file` of the workload's context (deterministically); the returned function puts it back. */
export function changeOneFile(w: Workload, file: string): () => void {
  const path = join(w.context, file);
  const original = readFileSync(path);
  writeFileSync(path, Buffer.concat([original, Buffer.from('// one-file change\n')]));
  return () => writeFileSync(path, original);
}
