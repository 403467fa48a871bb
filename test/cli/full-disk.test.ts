// A full disk (a real tmpfs of 2 MB): the cache dir or the output on it fails with one clear error
// naming the path and the room there, leaves nothing half-written, and the next build with space works.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
const skip = process.getuid?.() !== 0 ? 'mounting a tmpfs needs root' : !existsSync(cli) ? 'dist/cli.js is not built' : undefined;
let small = '';
let work = '';

before(() => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'slipway-full-'));
  small = join(work, 'small');
  execFileSync('mkdir', [small]);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'slipway-full-test', small]);
});
after(() => {
  if (!small) return;
  spawnSync('umount', [small]);
  rmSync(work, { recursive: true, force: true });
});

const build = (args: string[]) => spawnSync(process.execPath, [cli, 'build', '--progress', 'plain', ...args], { encoding: 'utf8', timeout: 120_000 });

/** Every file under `dir` (relative), to see that nothing half-written stayed. */
const filesUnder = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)) : []);

test('a cache dir on a full filesystem: one error with the path and the room; nothing half-written; the next build with space works', { skip }, () => {
  const ctx = mkdtempSync(join(work, 'ctx-'));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
  writeFileSync(join(ctx, 'big.bin'), randomBytes(3 << 20));
  const cache = join(small, 'cache');
  const r = build(['--cache-dir', cache, '-o', `type=oci,dest=${join(work, 'img.tar')}`, ctx]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: no space left on the filesystem of ${small}/cache\\S* \\(\\d+\\.\\d MB free of 2\\.0 MB; the build needs more than that\\)`));
  assert.match(r.stderr, /hint: free space there, or put the cache \(--cache-dir\)/);
  assert.equal((r.stderr.match(/^error: /gm) ?? []).length, 1, 'one error');
  const left = filesUnder(cache).filter((f) => !f.startsWith('keys/'));
  assert.deepEqual(left.filter((f) => f.startsWith('tmp/') || f.startsWith('blobs/')), [], `nothing half-written: ${left.join(', ')}`);
  assert.equal(existsSync(join(work, 'img.tar')), false);
  const again = build(['--cache-dir', join(work, 'roomy'), '-o', `type=oci,dest=${join(work, 'img.tar')}`, ctx]);
  assert.equal(again.status, 0, again.stderr);
});

test('an output on a full filesystem: the error names it and no partial file is left at the destination', { skip }, () => {
  const ctx = mkdtempSync(join(work, 'ctx-'));
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY big.bin /big.bin\n');
  writeFileSync(join(ctx, 'big.bin'), randomBytes(3 << 20));
  const dest = join(small, 'out', 'img.tar');
  const r = build(['--cache-dir', join(work, 'cache2'), '-o', `type=oci,dest=${dest}`, ctx]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: no space left on the filesystem of ${small}/out\\S*`));
  assert.deepEqual(filesUnder(small).filter((f) => f.startsWith('out/')), [], 'no partial output');
});
