// What a build sends as context: a cache dir kept inside the context (GitLab's `cache:` paths must
// be) is never part of it, so `COPY . .` does not copy the cache into the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildContext, makeContext, run } from './helpers.ts';

test('a cache dir inside the context is not sent as context: COPY . . leaves it out, build after build', async (t) => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY . /src/\n', 'app.txt': 'app\n', 'sub/b.txt': 'b\n' });
  const cacheDir = join(ctx, '.slipway-cache');
  const list = async (out: string) => {
    const { stdout } = await run('sh', ['-c', `mkdir -p ${out}.x && tar -xf ${out} -C ${out}.x && for l in ${out}.x/blobs/sha256/*; do tar -tzf "$l" 2>/dev/null; done | sort`]);
    return stdout.trim().split('\n');
  };
  const out = mkdtempSync(join(tmpdir(), 'slipway-out-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const first = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(out, 'one.tar')}`] });
  const second = await buildContext(ctx, { cacheDir, outputs: [`type=oci,dest=${join(out, 'two.tar')}`] });
  const files = await list(join(out, 'two.tar'));
  assert.deepEqual(files.filter((f) => f.startsWith('src/')), ['src/', 'src/Dockerfile', 'src/app.txt', 'src/sub/', 'src/sub/b.txt']);
  assert.equal(second.result.steps.cached, 1, 'the second build is a cache hit: the grown cache dir did not change the context');
  assert.equal(first.result.digest, second.result.digest);
});

test('a rebuild trusts the file hash index only for files that did not change: same size and mtime, new bytes, re-runs the COPY', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY . /src/\n', 'app.txt': 'version-1\n' });
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  await new Promise((r) => setTimeout(r, 50));
  const first = await buildContext(ctx, { cacheDir });
  assert.ok(existsSync(join(cacheDir, 'hashes.json')), 'the index is kept in the cache dir');
  const again = await buildContext(ctx, { cacheDir });
  assert.equal(again.result.steps.cached, 1);
  const { atime, mtime } = statSync(join(ctx, 'app.txt'));
  writeFileSync(join(ctx, 'app.txt'), 'version-2\n');
  utimesSync(join(ctx, 'app.txt'), atime, mtime);
  const changed = await buildContext(ctx, { cacheDir });
  assert.equal(changed.result.steps.run, 1, 'the rewritten file is hashed again');
  assert.notEqual(changed.result.digest, first.result.digest);
});

test('--no-cache-filter runs the named stage again; the others stay cached', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch AS base\nCOPY a.txt /a\nFROM base AS app\nCOPY b.txt /b\n', 'a.txt': 'a', 'b.txt': 'b' });
  const cacheDir = mkdtempSync(join(tmpdir(), 'slipway-cache-'));
  await buildContext(ctx, { cacheDir });
  assert.deepEqual((await buildContext(ctx, { cacheDir })).result.steps, { run: 0, cached: 2 });
  assert.deepEqual((await buildContext(ctx, { cacheDir, noCacheFilter: ['app'] })).result.steps, { run: 1, cached: 1 });
  assert.deepEqual((await buildContext(ctx, { cacheDir, noCacheFilter: ['base,app'] })).result.steps, { run: 2, cached: 0 });
});
