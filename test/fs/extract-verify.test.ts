// The extracted-layer store is shared by later builds: a layer only goes in under its true diffID.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractLayerOnce, writeLayer } from '../../src/fs/index.ts';

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
