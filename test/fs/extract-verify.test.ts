// The extracted-layer store is shared by later builds: a layer only goes in under its true diffID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { extractLayerOnce, indexLayer, writeLayer, type LayerIndex } from '../../src/fs/index.ts';

test('extractLayerOnce refuses a layer whose content is not its diffID, and files nothing', { skip: process.getuid?.() !== 0 && 'overlay-form extraction needs root' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-verify-'));
  const layer = await writeLayer([{ path: 'etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: { buffer: Buffer.from('hi\n') }, size: 3 }], { dir: join(dir, 'blobs') });
  const store = join(dir, 'store');
  const claimed = 'sha256:' + '0'.repeat(64);
  await assert.rejects(extractLayerOnce(store, claimed, layer.path), /layer content does not match its diffID sha256:0{64}/);
  assert.ok(!existsSync(join(store, '0'.repeat(64) + '.done')));
  assert.deepEqual(existsSync(store) ? readdirSync(store).filter((n) => !n.startsWith('.')) : [], []);
  const ok = await extractLayerOnce(store, layer.diffID, layer.path);
  assert.ok(existsSync(join(ok, 'etc/motd')));
});

test('a layer dir another build just placed (its marker not yet written) is kept as it is, never replaced', { skip: process.getuid?.() !== 0 && 'overlay-form extraction needs root' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-verify-'));
  const layer = await writeLayer([{ path: 'etc/motd', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, content: { buffer: Buffer.from('hi\n') }, size: 3 }], { dir: join(dir, 'blobs') });
  const store = join(dir, 'store');
  // What another process leaves between its rename into place and its marker: the whole layer.
  const theirs = join(store, layer.diffID.slice('sha256:'.length));
  mkdirSync(join(theirs, 'etc'), { recursive: true });
  writeFileSync(join(theirs, 'etc/motd'), 'hi\n');
  const inode = statSync(join(theirs, 'etc/motd')).ino;
  assert.equal(await extractLayerOnce(store, layer.diffID, layer.path), theirs);
  assert.equal(statSync(join(theirs, 'etc/motd')).ino, inode, 'their dir (maybe some overlay\'s lower dir by now) was replaced');
  assert.ok(existsSync(theirs + '.done'), 'the marker follows');
  assert.deepEqual(readdirSync(store).filter((n) => n.startsWith('.extract-')), [], 'our own copy was removed');
});

test('the diffID check covers the bytes after the end-of-archive blocks, and the same pass gives indexLayer\'s index', { skip: process.getuid?.() !== 0 && 'overlay-form extraction needs root' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-verify-'));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(src, 'etc/motd'), 'hi\n');
  // GNU tar pads an archive to its record (here 1 MiB): zero blocks far beyond the two that end
  // it, which the tar reader never asks for, and which the diffID covers.
  const tarFile = join(dir, 'layer.tar');
  execFileSync('tar', ['-cf', tarFile, '-b', '2048', '--owner=0', '--group=0', '-C', src, 'etc']);
  const tar = readFileSync(tarFile);
  assert.equal(tar.length, 1 << 20);
  const blob = join(dir, 'layer.tar.gz');
  writeFileSync(blob, gzipSync(tar));
  const diffID = 'sha256:' + createHash('sha256').update(tar).digest('hex');
  const store = join(dir, 'store');
  const extracted: { index?: LayerIndex } = {};
  const lower = await extractLayerOnce(store, diffID, blob, { extracted });
  assert.equal(readFileSync(join(lower, 'etc/motd'), 'utf8'), 'hi\n');
  assert.deepEqual(extracted.index, await indexLayer(blob));
  // Already in the store: nothing is read, so no index comes with it.
  const again: { index?: LayerIndex } = {};
  assert.equal(await extractLayerOnce(store, diffID, blob, { extracted: again }), lower);
  assert.equal(again.index, undefined);
});
