// `slipway cache du|prune` and `slipway build --cache-max-size`, as users run them (child processes)
// on real cache dirs: what is counted, what goes first (least recently used), what stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDuration, parseSize } from '../../src/cli/cache.ts';
import { UserError } from '../../src/errors.ts';
import { runCliProcess } from '../harness/cli.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

async function slipway(args: string[], cwd = root) {
  return runCliProcess(args, { cwd, env: { SOURCE_DATE_EPOCH: '0' } });
}

const hoursAgo = (h: number): Date => new Date(Date.now() - h * 3600_000);

/** A cache dir with blobs of 64 KiB last used 1..n hours ago, a record per blob, a mount and a snapshot. */
function cacheDir(n: number): { dir: string; digests: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-prune-'));
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  mkdirSync(join(dir, 'keys'), { recursive: true });
  const digests: string[] = [];
  for (let i = 1; i <= n; i++) {
    const data = randomBytes(64 << 10);
    const hex = createHash('sha256').update(data).digest('hex');
    const file = join(dir, 'blobs', 'sha256', hex);
    writeFileSync(file, data);
    utimesSync(file, hoursAgo(i), hoursAgo(i));
    const key = createHash('sha256').update(`step ${i}`).digest('hex');
    writeFileSync(join(dir, 'keys', `${key}.json`), JSON.stringify({ layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${hex}`, size: data.length, diffID: `sha256:${hex}` } }));
    // A compressed-chunk pointer into the blob (fs/writer.ts): it goes with its blob.
    mkdirSync(join(dir, 'chunks'), { recursive: true });
    writeFileSync(join(dir, 'chunks', `gzip-6-v1-${key}`), `${hex} 0 ${data.length} ${hex}`);
    digests.push(`sha256:${hex}`);
  }
  const mount = join(dir, 'mounts', 'a'.repeat(32));
  mkdirSync(mount, { recursive: true });
  writeFileSync(join(mount, 'f'), randomBytes(32 << 10));
  utimesSync(mount, hoursAgo(100), hoursAgo(100));
  const snap = join(dir, 'snapshots', 'b'.repeat(64));
  mkdirSync(snap, { recursive: true });
  writeFileSync(join(snap, 'f'), randomBytes(16 << 10));
  writeFileSync(snap + '.done', '');
  return { dir, digests };
}

const blobsLeft = (dir: string): string[] => readdirSync(join(dir, 'blobs', 'sha256')).map((h) => `sha256:${h}`);

test('size and duration flags read as buildx reads them; bad ones are one clear error', () => {
  assert.equal(parseSize('2GB', '--keep-storage'), 2 * 1024 ** 3);
  assert.equal(parseSize('512m', '--keep-storage'), 512 * 1024 ** 2);
  assert.equal(parseSize('1.5KiB', '--keep-storage'), 1536);
  assert.equal(parseSize('1000', '--keep-storage'), 1000);
  assert.equal(parseDuration('1h30m', 'until'), 5400_000);
  assert.equal(parseDuration('90s', 'until'), 90_000);
  assert.throws(() => parseSize('lots', '--keep-storage'), (e: unknown) => e instanceof UserError && /--keep-storage "lots": expected a size/.test(e.message));
  assert.throws(() => parseDuration('1 day', 'until'), (e: unknown) => e instanceof UserError && /expected a duration/.test(e.message));
});

test('slipway cache du counts blobs, extracted layers, mounts and records', async () => {
  const { dir } = cacheDir(3);
  const r = await slipway(['cache', 'du', '--cache-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /layer blobs\s+3\s+192\.0KiB/);
  assert.match(r.stdout, /extracted layers\s+1\s+/);
  assert.match(r.stdout, /cache mounts\s+1\s+/);
  assert.match(r.stdout, /step records\s+3/);
  assert.match(r.stdout, /Total: \d/);
});

test('slipway cache prune --keep-storage removes least recently used first and drops their records', async () => {
  const { dir, digests } = cacheDir(4);
  // Room for the fresh snapshot (~20 KiB) and one blob: the 100 h old mount goes first, then the oldest blobs.
  const r = await slipway(['cache', 'prune', '--cache-dir', dir, '--keep-storage', '100KiB']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!existsSync(join(dir, 'mounts', 'a'.repeat(32))), 'the oldest unit (a mount) went first');
  assert.deepEqual(blobsLeft(dir).sort(), [digests[0]].sort(), 'only the most recently used blob stays next to the fresh snapshot');
  assert.equal(readdirSync(join(dir, 'keys')).length, 1, 'records of removed layers are dropped');
  assert.deepEqual(readdirSync(join(dir, 'chunks')).map((p) => readFileSync(join(dir, 'chunks', p), 'latin1').split(' ')[0]), [digests[0].slice(7)], 'and chunk pointers into them');
  assert.match(r.stdout, /removed 4 entries .* and 3 step records/);
});

test('slipway cache prune --filter until=DURATION removes only what is older; no flags removes everything', async () => {
  const { dir, digests } = cacheDir(4);
  const r = await slipway(['cache', 'prune', '--cache-dir', dir, '--filter', 'until=2h30m']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(blobsLeft(dir).sort(), digests.slice(0, 2).sort());
  assert.ok(existsSync(join(dir, 'snapshots', 'b'.repeat(64))), 'a fresh extracted layer stays');
  const bad = await slipway(['cache', 'prune', '--cache-dir', dir, '--filter', 'label=x']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^error: --filter "label=x": the only filter is until=DURATION/);
  const all = await slipway(['cache', 'prune', '--cache-dir', dir]);
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(blobsLeft(dir), []);
  assert.match((await slipway(['cache', 'du', '--cache-dir', dir])).stdout, /Total: 0B/);
});

test('slipway build --cache-max-size prunes after the build, least recently used first, keeping what it just used', async () => {
  const { dir, digests } = cacheDir(3);
  const ctx = mkdtempSync(join(tmpdir(), 'slipway-ctx-'));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
  writeFileSync(join(ctx, 'a.txt'), randomBytes(1000).toString('hex'));
  const out = join(ctx, 'out.tar');
  const r = await slipway(['build', '--cache-dir', dir, '--cache-max-size', '1KB', '-o', `type=oci,dest=${out}`, ctx]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /cache: removed 4 entries .* and 3 step records/, 'three old blobs and the old mount');
  const left = blobsLeft(dir);
  assert.ok(left.length > 0, 'what this build wrote stays (used within 10 minutes)');
  assert.ok(!digests.some((d) => left.includes(d)));
  const again = await slipway(['build', '--cache-dir', dir, '--progress', 'plain', '-o', `type=oci,dest=${out}`, ctx]);
  assert.match(again.stderr, /CACHED/);
  const bad = await slipway(['build', '--cache-max-size', 'huge', ctx]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--cache-max-size "huge": expected a size/);
});
