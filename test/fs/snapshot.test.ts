// One suite, two snapshotters: the same RUN-like change must give the same layer from the overlay
// upper dir and from walk-and-compare, and applying that layer must reproduce the changed tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm, symlink, link, chown, chmod, appendFile, readFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  writeLayer, applyLayer, extractLayerOnce, prepareOverlay, overlaySupported, diffOverlayUpper,
  recordTree, diffTree, type LayerEntry, type LayerResult,
} from '../../src/fs/index.ts';
import { readLayer } from '../../src/fs/apply.ts';
import { tempDir, isRoot, has, snapshotTree } from './helpers.ts';

const t0 = 1_600_000_000;
const d = (path: string, mode = 0o755): LayerEntry => ({ path, type: 'dir', mode, uid: 0, gid: 0, mtime: t0 });
const f = (path: string, body: string, mode = 0o644, xattrs?: Record<string, Uint8Array>): LayerEntry => ({ path, type: 'file', mode, uid: 0, gid: 0, mtime: t0, content: { buffer: Buffer.from(body) }, xattrs });

const baseEntries = (): LayerEntry[] => [
  d('etc'), f('etc/passwd', 'root:x:0:0::/root:/bin/sh\n'),
  d('data'), f('data/a', 'a'), f('data/b', 'b'), d('data/sub'), f('data/sub/c', 'c'), d('data/sub/deeper'), f('data/sub/deeper/d', 'd'),
  d('keep'), f('keep/x', 'x', 0o644, { 'user.origin': Buffer.from('base') }),
  f('tool', '#!/bin/sh\n', 0o755), { path: 'link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: t0, linkTarget: 'data/a' },
  d('gone'), f('gone/inner', 'i'),
];

/** The RUN step, as a function on the rootfs it sees. */
async function change(root: string): Promise<void> {
  await rm(join(root, 'data/b'));                                   // whiteout
  await rm(join(root, 'data/sub'), { recursive: true });            // replaced dir → opaque
  await mkdir(join(root, 'data/sub'));
  await writeFile(join(root, 'data/sub/new'), 'new');
  await rm(join(root, 'gone'), { recursive: true });                // whole dir deleted → one whiteout
  await mkdir(join(root, 'new'));
  await writeFile(join(root, 'new/file'), 'hello');
  await link(join(root, 'new/file'), join(root, 'new/file-link'));  // hardlink
  await symlink('/etc/passwd', join(root, 'new/sym'));              // symlink
  await rm(join(root, 'link'));
  await symlink('data/zzz', join(root, 'link'));                    // changed link target
  await chown(join(root, 'tool'), 1000, 1000);                      // ownership
  await chmod(join(root, 'tool'), 0o4750);                          // mode incl. setuid
  await chmod(join(root, 'keep'), 0o700);                           // dir mode
  await appendFile(join(root, 'etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  execFileSync('setfattr', ['-n', 'user.origin', '-v', 'changed', join(root, 'keep/x')]); // xattr only
}

const expectedNames = [
  'data', 'data/.wh.b', 'data/sub', 'data/sub/.wh..wh..opq', 'data/sub/new', 'etc', 'etc/passwd', '.wh.gone', 'keep', 'keep/x', 'link',
  'new', 'new/file', 'new/file-link', 'new/sym', 'tool',
].sort();

async function describe(res: LayerResult): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const e of readLayer(res.path)) {
    const h = e.header;
    out[h.name] = `${h.type} ${h.mode.toString(8)} ${h.uid}:${h.gid}${h.linkname ? ' -> ' + h.linkname : ''}${[...h.xattrs].map(([k, v]) => ` ${k}=${v}`).join('')}`;
  }
  return out;
}

test('snapshotters: overlay upper and walk-and-compare give the same layer for the same change', async (t) => {
  if (!isRoot()) return t.skip('needs root: overlay mounts, chown');
  if (!has('setfattr')) return t.skip('needs setfattr (apt install attr)');
  const dir = await tempDir(t);
  const base = await writeLayer(baseEntries(), { dir: join(dir, 'blobs') });
  const results: Record<string, LayerResult> = {};

  // Walk and compare on a plain extracted rootfs.
  const rootfs = join(dir, 'walk');
  await mkdir(rootfs);
  await applyLayer(base.path, rootfs);
  const before = await recordTree(rootfs);
  await change(rootfs);
  results.walk = await writeLayer(await diffTree(before), { dir: join(dir, 'blobs'), sourceDateEpoch: t0 });
  const changedTree = await snapshotTree(rootfs);

  if (await overlaySupported(join(dir, 'ovl'))) {
    const lower = await extractLayerOnce(join(dir, 'store'), base.diffID, base.path);
    assert.equal(await extractLayerOnce(join(dir, 'store'), base.diffID, base.path), lower, 'extracted once');
    const m = await prepareOverlay([lower], join(dir, 'ovl'));
    try {
      await change(m.mergedDir);
      results.overlay = await writeLayer(await diffOverlayUpper(m.upperDir), { dir: join(dir, 'blobs'), sourceDateEpoch: t0 });
    } finally {
      await m.cleanup();
    }
  } else t.diagnostic('overlay cannot be mounted here: only the walk snapshotter was checked');

  const walk = await describe(results.walk);
  assert.deepEqual(Object.keys(walk).sort(), expectedNames);
  assert.equal(walk['new/file-link'], 'hardlink 644 0:0 -> new/file');
  assert.equal(walk['tool'], 'file 4750 1000:1000');
  assert.equal(walk['keep'], 'dir 700 0:0');
  assert.equal(walk['link'], 'symlink 777 0:0 -> data/zzz');
  assert.match(walk['keep/x'], /user.origin=changed/);
  if (results.overlay) {
    assert.deepEqual(await describe(results.overlay), walk);
    assert.equal(results.overlay.digest, results.walk.digest, 'byte-identical layers');
  }

  // Base + the diff layer reproduce the changed tree.
  const replay = join(dir, 'replay');
  await mkdir(replay);
  await applyLayer(base.path, replay);
  await applyLayer(results.walk.path, replay);
  assert.deepEqual(await snapshotTree(replay), changedTree);
  assert.match(await readFile(join(replay, 'etc/passwd'), 'utf8'), /^app:/m);
});

test('snapshotters: no change → an empty layer from both', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const dir = await tempDir(t);
  const base = await writeLayer(baseEntries(), { dir: join(dir, 'blobs') });
  const rootfs = join(dir, 'walk');
  await mkdir(rootfs);
  await applyLayer(base.path, rootfs);
  assert.deepEqual(await diffTree(await recordTree(rootfs)), []);
  if (await overlaySupported(join(dir, 'ovl'))) {
    const m = await prepareOverlay([await extractLayerOnce(join(dir, 'store'), base.diffID, base.path)], join(dir, 'ovl'));
    try { assert.deepEqual(await diffOverlayUpper(m.upperDir), []); } finally { await m.cleanup(); }
  }
});

test('snapshotters: a write through one name of a hardlink from the base leaves the other name as it was (overlay copy-up)', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const dir = await tempDir(t);
  const base = await writeLayer([d('data'), f('data/a', 'one\n'), { path: 'data/hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: t0, linkTarget: 'data/a' }], { dir: join(dir, 'blobs') });
  const step = async (root: string) => { await appendFile(join(root, 'data/a'), 'changed\n'); };
  const rootfs = join(dir, 'walk');
  await mkdir(rootfs);
  await applyLayer(base.path, rootfs);
  const before = await recordTree(rootfs);
  await step(rootfs);
  const walk = await writeLayer(await diffTree(before), { dir: join(dir, 'blobs'), sourceDateEpoch: t0 });
  assert.deepEqual(Object.keys(await describe(walk)).sort(), ['data', 'data/a']);
  assert.equal(await readFile(join(rootfs, 'data/hard'), 'utf8'), 'one\n');
  if (await overlaySupported(join(dir, 'ovl'))) {
    const m = await prepareOverlay([await extractLayerOnce(join(dir, 'store'), base.diffID, base.path)], join(dir, 'ovl'));
    try {
      await step(m.mergedDir);
      assert.equal(await readFile(join(m.mergedDir, 'data/hard'), 'utf8'), 'one\n', 'overlay: only the name written through is copied up');
      const overlay = await writeLayer(await diffOverlayUpper(m.upperDir), { dir: join(dir, 'blobs'), sourceDateEpoch: t0 });
      assert.equal(overlay.digest, walk.digest, 'byte-identical layers');
    } finally {
      await m.cleanup();
    }
  }
});
