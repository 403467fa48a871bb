// The Actions cache backend against the real @actions/cache, talking to our stand-in of the cache
// service v2 whose signed URLs point at a real Azurite blob service. @actions/cache reads its
// settings from process.env, so every operation runs in a child process with exactly the runner
// variables it needs (never this process's own ACTIONS_* variables).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCacheService, type CacheService } from '../harness/cache-service.ts';
import { cacheKeyPrefix } from '../../src/action/cache/index.ts';

const repoRoot = resolve(import.meta.dirname, '../..');
const moduleUrl = new URL('../../src/action/cache/index.ts', import.meta.url).href;
let service: CacheService;
let scratch: string;

before(async () => {
  service = await startCacheService();
  scratch = await mkdtemp(join(tmpdir(), 'slipway-actions-cache-'));
});
after(async () => {
  await service?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface ChildRun {
  result: Record<string, unknown> & { outcome: string };
  stdout: string;
  warnings: string[];
  errors: string[];
  notices: string[];
  ms: number;
  code: number | null;
}

const driver = `
const { restoreLayerCache, saveLayerCache, endProcess } = await import(process.env.SLIPWAY_TEST_MODULE);
const req = JSON.parse(process.env.SLIPWAY_TEST_REQUEST);
const log = {
  info: (m) => process.stdout.write('INFO ' + m + '\\n'),
  warning: (m) => process.stdout.write('::warning::' + m + '\\n'),
  notice: (m) => process.stdout.write('::notice::' + m + '\\n'),
};
let result;
if (req.op === 'toolkit-save') {
  // @actions/cache on its own, to check the stand-in answers as the real service does.
  const toolkit = await import('@actions/cache');
  result = { outcome: String(await toolkit.saveCache(req.opts.paths, req.opts.key)) };
} else {
  const fn = req.op === 'restore' ? restoreLayerCache : saveLayerCache;
  result = await fn({ ...req.opts, log });
}
process.stdout.write('RESULT ' + JSON.stringify(result) + '\\n');
if (req.end) endProcess(0);
`;

/** Runs one restore or save in a fresh Node process as the action would; fails if it outlives `limitMs`. */
async function runChild(op: 'restore' | 'save' | 'toolkit-save', opts: Record<string, unknown>, o: { env?: Record<string, string>; end?: boolean; limitMs?: number } = {}): Promise<ChildRun> {
  const workspace = join(scratch, 'workspace');
  const runnerTemp = join(scratch, 'runner-temp');
  await mkdir(workspace, { recursive: true });
  await mkdir(runnerTemp, { recursive: true });
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_WORKSPACE: workspace,
    RUNNER_TEMP: runnerTemp,
    ...(o.env ?? service.env),
    SLIPWAY_TEST_MODULE: moduleUrl,
    SLIPWAY_TEST_REQUEST: JSON.stringify({ op, opts, end: o.end ?? false }),
  };
  const started = performance.now();
  const child = spawn(process.execPath, ['--input-type=module', '-e', driver], { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = child.stdout.toArray();
  const err = child.stderr.toArray();
  const limitMs = o.limitMs ?? 60_000;
  const code = await new Promise<number | null>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${op} child still running after ${limitMs} ms`));
    }, limitMs);
    child.once('exit', (c) => { clearTimeout(timer); ok(c); });
  });
  const ms = performance.now() - started;
  const stdout = Buffer.concat(await out).toString();
  const stderr = Buffer.concat(await err).toString();
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `no result from ${op} child (exit ${code}):\n${stdout}\n${stderr}`);
  const pick = (kind: string): string[] => stdout.split('\n').filter((l) => l.startsWith(`::${kind}`));
  return { result: JSON.parse(line.slice(7)), stdout, warnings: pick('warning'), errors: pick('error'), notices: pick('notice'), ms, code };
}

function digestOf(data: Buffer): string {
  return 'sha256:' + createHash('sha256').update(data).digest('hex');
}

/** A cache dir like the engine's: blobs, key records that point at them, and cache mounts. */
async function fillCacheDir(dir: string, o: { blobs?: number; seed?: string; mounts?: boolean } = {}): Promise<string[]> {
  const digests: string[] = [];
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await mkdir(join(dir, 'keys'), { recursive: true });
  for (let i = 0; i < (o.blobs ?? 3); i++) {
    const data = Buffer.concat([Buffer.from(`${o.seed ?? 'seed'}-${i}-`), randomBytes(20_000 + i * 1000)]);
    const digest = digestOf(data);
    await writeFile(join(dir, 'blobs', 'sha256', digest.slice(7)), data);
    const key = createHash('sha256').update(`${o.seed}-step-${i}`).digest('hex');
    await writeFile(join(dir, 'keys', `${key}.json`), JSON.stringify({
      layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size: data.length, diffID: digest }, created: `RUN step ${i}`,
    }));
    digests.push(digest);
  }
  if (o.mounts ?? true) {
    const m = join(dir, 'mounts', 'npm-cache');
    await mkdir(join(m, 'sub', 'deep'), { recursive: true });
    await writeFile(join(m, 'index.json'), '{"packages":3}');
    await writeFile(join(m, 'sub', 'deep', 'blob.bin'), randomBytes(5000));
    await symlink('sub/deep/blob.bin', join(m, 'latest'));
  }
  return digests;
}

/** path → content (files), → '-> target' (symlinks), → 'dir'; the `.actions-cache` stage excluded. */
async function tree(dir: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(dir, rel)).catch(() => [])).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    if (path === '.actions-cache') continue;
    const s = await lstat(join(dir, path));
    if (s.isDirectory()) {
      out[path] = 'dir';
      Object.assign(out, await tree(dir, path));
    } else if (s.isSymbolicLink()) out[path] = '-> ' + await readlink(join(dir, path));
    else out[path] = createHash('sha256').update(await readFile(join(dir, path))).digest('hex');
  }
  return out;
}

const layerEntries = (scope: string) => service.entries().filter((e) => e.key.startsWith(cacheKeyPrefix('layers', scope)));
const mountEntries = (scope: string) => service.entries().filter((e) => e.key.startsWith(cacheKeyPrefix('mounts', scope)));

test('save then restore into an empty dir round-trips every file; unchanged content saves nothing', async () => {
  service.setFault('none');
  const scope = 'roundtrip linux/amd64,linux/arm64';
  const dir = join(scratch, 'roundtrip');
  await fillCacheDir(dir, { seed: 'rt' });
  const before = await tree(dir);
  const opts = { dir, scope, budgetMs: 60_000, sizeBudgetBytes: 10 << 20 };

  const saved = await runChild('save', opts);
  assert.equal(saved.result.outcome, 'saved', saved.stdout);
  assert.equal(saved.code, 0);
  assert.deepEqual(saved.warnings, [], saved.stdout);
  assert.deepEqual(saved.errors, []);
  assert.equal(layerEntries(scope).length, 1);
  assert.equal(mountEntries(scope).length, 1);
  assert.ok(layerEntries(scope).every((e) => e.finalized && e.sizeBytes > 0));
  assert.doesNotMatch(layerEntries(scope)[0].key, /[, ]/, 'keys hold no commas or spaces');

  await rm(dir, { recursive: true, force: true });
  const restored = await runChild('restore', opts);
  assert.equal(restored.result.outcome, 'hit', restored.stdout);
  assert.equal(restored.result.blobs, 3);
  assert.equal(restored.result.keys, 3);
  assert.equal(restored.result.mounts, 1);
  assert.equal(restored.result.corrupt, 0);
  assert.deepEqual(restored.warnings, [], restored.stdout);
  assert.deepEqual(await tree(dir), before, 'restored tree is byte-identical');

  const again = await runChild('save', opts);
  assert.equal(again.result.outcome, 'unchanged', again.stdout);
  assert.equal(layerEntries(scope).length, 1, 'no second layers entry');
  assert.equal(mountEntries(scope).length, 1, 'no second mounts entry');

  // A fresh runner whose dir ends up with exactly the stored content: looked up, not re-uploaded.
  await rm(dir, { recursive: true, force: true });
  await runChild('restore', opts);
  await rm(join(dir, '.actions-cache'), { recursive: true, force: true }); // forget what was restored
  const creates = service.calls().filter((c) => c === 'CreateCacheEntry').length;
  const third = await runChild('save', opts);
  assert.equal(third.result.outcome, 'unchanged', third.stdout);
  assert.equal(service.calls().filter((c) => c === 'CreateCacheEntry').length, creates, 'an existing key is looked up, not re-uploaded');
});

test('restore by prefix takes the newest entry of its own scope only', async () => {
  service.setFault('none');
  const scope = 'newest linux/amd64';
  const dir = join(scratch, 'newest');
  const opts = { dir, scope, budgetMs: 60_000, sizeBudgetBytes: 10 << 20 };
  const first = await fillCacheDir(dir, { seed: 'old', blobs: 1, mounts: false });
  assert.equal((await runChild('save', opts)).result.outcome, 'saved');
  const second = await fillCacheDir(dir, { seed: 'new', blobs: 2, mounts: false });
  assert.equal((await runChild('save', opts)).result.outcome, 'saved');
  // Another scope saves later still; it must not be picked.
  const otherDir = join(scratch, 'newest-other');
  await fillCacheDir(otherDir, { seed: 'other', blobs: 1, mounts: false });
  assert.equal((await runChild('save', { ...opts, dir: otherDir, scope: 'newest linux/arm64' })).result.outcome, 'saved');
  assert.equal(layerEntries(scope).length, 2);

  await rm(dir, { recursive: true, force: true });
  const r = await runChild('restore', opts);
  assert.equal(r.result.outcome, 'hit', r.stdout);
  const newest = layerEntries(scope).sort((a, b) => b.seq - a.seq)[0];
  assert.equal(r.result.layersKey, newest.key);
  const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`).sort();
  assert.deepEqual(blobs, [...first, ...second].sort(), 'the newest entry holds old and new blobs');
});

test('the size budget keeps the most recently used blobs and drops records of the rest', async () => {
  service.setFault('none');
  const scope = 'budget';
  const dir = join(scratch, 'budget');
  const digests = await fillCacheDir(dir, { seed: 'b', blobs: 4, mounts: false });
  // Blob i was last used i hours ago… reversed: digests[3] is the most recent.
  for (const [i, d] of digests.entries()) {
    const t = new Date(Date.now() - (4 - i) * 3600_000);
    await utimes(join(dir, 'blobs', 'sha256', d.slice(7)), t, t);
  }
  const opts = { dir, scope, budgetMs: 60_000, sizeBudgetBytes: 48_000 }; // room for two ~22 KB blobs
  const saved = await runChild('save', opts);
  assert.equal(saved.result.outcome, 'saved', saved.stdout);
  assert.equal(saved.result.dropped, 2);
  await rm(dir, { recursive: true, force: true });
  const r = await runChild('restore', opts);
  assert.equal(r.result.outcome, 'hit');
  const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`).sort();
  assert.deepEqual(blobs, [digests[2], digests[3]].sort());
  const records = await Promise.all((await readdir(join(dir, 'keys'))).map(async (k) => JSON.parse(await readFile(join(dir, 'keys', k), 'utf8')).layer.digest));
  assert.deepEqual(records.sort(), [digests[2], digests[3]].sort(), 'no record points at a blob that was left out');
});

test('a corrupt blob in a restored entry is dropped as a miss; the rest is used', async () => {
  service.setFault('none');
  const scope = 'corrupt';
  const dir = join(scratch, 'corrupt');
  const digests = await fillCacheDir(dir, { seed: 'c', blobs: 3 });
  const opts = { dir, scope, budgetMs: 60_000, sizeBudgetBytes: 10 << 20 };
  assert.equal((await runChild('save', opts)).result.outcome, 'saved');
  await rm(dir, { recursive: true, force: true });
  service.setFault('corrupt');
  try {
    const r = await runChild('restore', opts);
    assert.equal(r.result.outcome, 'hit', r.stdout);
    assert.equal(r.result.corrupt, 3, 'one blob, the record pointing at it, and the damaged cache mount');
    assert.equal(r.result.blobs, 2);
    assert.equal(r.result.mounts, 0);
    assert.deepEqual(await readdir(join(dir, 'mounts')).catch(() => []), [], 'a damaged mount is dropped whole');
    assert.equal(r.warnings.length, 1, r.stdout);
    assert.match(r.warnings[0], /failed verification/);
    const present = (await readdir(join(dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`);
    assert.equal(present.length, 2);
    for (const d of present) {
      assert.ok(digests.includes(d));
      assert.equal(digestOf(await readFile(join(dir, 'blobs', 'sha256', d.slice(7)))), d, 'every blob kept matches its name');
    }
    const records = await Promise.all((await readdir(join(dir, 'keys'))).map(async (k) => JSON.parse(await readFile(join(dir, 'keys', k), 'utf8')).layer.digest));
    assert.deepEqual(records.sort(), present.sort());
  } finally {
    service.setFault('none');
  }
});

test('a failing service (500s) costs at most the budget and one warning; nothing is thrown', async () => {
  const scope = 'failing';
  const dir = join(scratch, 'failing');
  await fillCacheDir(dir, { seed: 'f', blobs: 1 });
  service.setFault('error');
  try {
    for (const op of ['restore', 'save'] as const) {
      const r = await runChild(op, { dir, scope, budgetMs: 3000, sizeBudgetBytes: 10 << 20 }, { end: true, limitMs: 15_000 });
      assert.equal(r.result.outcome, 'timeout', r.stdout);
      assert.equal(r.code, 0);
      assert.equal(r.warnings.length, 1, r.stdout);
      assert.match(r.warnings[0], /budget/);
      assert.deepEqual(r.errors, [], 'the toolkit reports no error annotation of its own');
    }
  } finally {
    service.setFault('none');
  }
  assert.equal(layerEntries(scope).length, 0);
});

test('an unreachable service fails fast with one warning', async () => {
  const dir = join(scratch, 'unreachable');
  await fillCacheDir(dir, { seed: 'u', blobs: 1 });
  const env = { ...service.env, ACTIONS_RESULTS_URL: 'http://127.0.0.1:1/' };
  for (const op of ['restore', 'save'] as const) {
    const r = await runChild(op, { dir, scope: 'unreachable', budgetMs: 30_000, sizeBudgetBytes: 10 << 20 }, { env, limitMs: 20_000 });
    assert.equal(r.result.outcome, 'failed', r.stdout);
    assert.equal(r.warnings.length, 1, r.stdout);
    assert.match(r.warnings[0], /ECONNREFUSED|connect/i);
    assert.ok(r.ms < 20_000);
  }
});

test('a hanging service returns within the budget and the process ends', async () => {
  const scope = 'hanging';
  const dir = join(scratch, 'hanging');
  await fillCacheDir(dir, { seed: 'h', blobs: 1 });
  service.setFault('hang');
  try {
    for (const op of ['restore', 'save'] as const) {
      const r = await runChild(op, { dir, scope, budgetMs: 3000, sizeBudgetBytes: 10 << 20 }, { end: true, limitMs: 12_000 });
      assert.equal(r.result.outcome, 'timeout', r.stdout);
      assert.ok((r.result.ms as number) < 4500, `returned after ${r.result.ms} ms`);
      assert.equal(r.warnings.length, 1, r.stdout);
      assert.equal(r.code, 0);
    }
  } finally {
    service.setFault('none');
  }
});

test('the stand-in keeps keys immutable the way @actions/cache expects', async () => {
  service.setFault('none');
  const dir = join(scratch, 'immutable');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'a.txt'), 'first');
  const key = 'slipway-test-immutable-1';
  const first = await runChild('toolkit-save', { paths: [dir], key });
  assert.match(first.result.outcome, /^[1-9]\d*$/, first.stdout);
  await writeFile(join(dir, 'a.txt'), 'second');
  const second = await runChild('toolkit-save', { paths: [dir], key });
  assert.equal(second.result.outcome, '-1', 'the second save of a key is refused');
  assert.match(second.stdout, /another job may be creating this cache/);
  assert.deepEqual(second.warnings, [], 'a refused reservation is not a warning');
  assert.equal(service.entries().filter((e) => e.key === key).length, 1);
});

test('without the cache service (no env, GHES without cache) it skips with a notice', async () => {
  const dir = join(scratch, 'nofeature');
  await fillCacheDir(dir, { seed: 'n', blobs: 1 });
  const opts = { dir, scope: 'nofeature', budgetMs: 10_000, sizeBudgetBytes: 10 << 20 };
  for (const env of [{}, { ...service.env, GITHUB_SERVER_URL: 'https://ghes.example.com' }]) {
    for (const op of ['restore', 'save'] as const) {
      const r = await runChild(op, opts, { env, limitMs: 15_000 });
      assert.equal(r.result.outcome, 'unavailable', r.stdout);
      assert.equal(r.notices.length, 1);
      assert.deepEqual(r.warnings, []);
    }
  }
  assert.equal(resolve(dir), dir);
});
