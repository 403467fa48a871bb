// A COPY's entries made straight into a lower dir must be what extracting their layer makes: the
// RUN after the COPY sees that dir, and the dir joins the extracted-layer store as that layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer, materializeEntries, normalizeEntries, writeLayer, type LayerEntry } from '../../src/fs/index.ts';
import { isRoot, snapshotTree, tempDir } from './helpers.ts';

const t0 = 1_600_000_000;

/** Every path's mtime under `root`, directories included (snapshotTree leaves theirs out). */
function mtimes(root: string, rel = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, r));
    out[r] = Math.floor(st.mtimeMs / 1000);
    if (st.isDirectory()) Object.assign(out, mtimes(root, r));
  }
  return out;
}

test('materialized entries are the tree their layer extracts to, and give that layer again', { skip: !isRoot() && 'owners need root' }, async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'app.js'), 'console.log(1)\n');
  writeFileSync(join(src, 'big.bin'), Buffer.alloc(3 << 20, 7));
  const entries: LayerEntry[] = [
    // parents missing on purpose (normalizeEntries adds them), a read-only dir with children
    { path: 'srv/app/app.js', type: 'file', mode: 0o640, uid: 1000, gid: 1000, mtime: t0 + 1, size: 15, content: { path: join(src, 'app.js') } },
    { path: 'srv/app/big.bin', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: t0 + 2, size: 3 << 20, content: { path: join(src, 'big.bin') } },
    { path: 'srv/ro', type: 'dir', mode: 0o555, uid: 7, gid: 8, mtime: t0 + 3 },
    { path: 'srv/ro/note', type: 'file', mode: 0o444, uid: 7, gid: 8, mtime: t0 + 4, size: 5, content: { buffer: Buffer.from('note\n') } },
    { path: 'srv/ro/streamed', type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: t0 + 5, size: 6, content: { stream: async function* () { yield Buffer.from('str'); yield Buffer.from('eam'); } } },
    { path: 'srv/link', type: 'symlink', mode: 0o777, uid: 5, gid: 5, mtime: t0 + 6, linkTarget: 'app/app.js' },
    { path: 'srv/again', type: 'hardlink', mode: 0o640, uid: 1000, gid: 1000, mtime: t0 + 1, linkTarget: 'srv/app/app.js' },
  ];
  const normalized = normalizeEntries(entries);
  const direct = join(dir, 'direct');
  mkdirSync(direct);
  const made = await materializeEntries(normalized, direct);
  assert.ok(made, 'these entries are all ones it makes');
  // The layer written from the copies is the layer of the original entries, byte for byte.
  const fromCopies = await writeLayer(made, { dir: join(dir, 'blobs-a'), compression: 'none' });
  const fromSources = await writeLayer(entries.map((e) => (e.content && 'stream' in e.content ? { ...e, content: { buffer: Buffer.from('stream') } } : e)), { dir: join(dir, 'blobs-b'), compression: 'none' });
  assert.equal(fromCopies.diffID, fromSources.diffID);
  // And the dir is what extracting that layer as an overlay lower dir makes.
  const extracted = join(dir, 'extracted');
  mkdirSync(extracted);
  await applyLayer(fromSources.path, extracted, { whiteouts: 'overlay', privileged: true });
  assert.deepEqual(await snapshotTree(direct, { mtimes: true }), await snapshotTree(extracted, { mtimes: true }));
  assert.deepEqual(mtimes(direct), mtimes(extracted));
  assert.equal((lstatSync(join(direct, 'srv/app/big.bin')).mode & 0o7777), 0o4755, 'setuid kept through the chown');
  assert.equal(lstatSync(join(direct, 'srv/again')).ino, lstatSync(join(direct, 'srv/app/app.js')).ino);
});

test('entries it does not make, or a file that changed since it was planned, are left to the layer', { skip: !isRoot() && 'owners need root' }, async (t) => {
  const dir = await tempDir(t);
  const fifo: LayerEntry[] = [{ path: 'p', type: 'fifo', mode: 0o644, uid: 0, gid: 0, mtime: t0 }];
  const xattr: LayerEntry[] = [{ path: 'x', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: t0, size: 1, content: { buffer: Buffer.from('x') }, xattrs: { 'user.a': Buffer.from('1') } }];
  for (const [name, list] of [['fifo', fifo], ['xattr', xattr]] as const) {
    const root = join(dir, name);
    mkdirSync(root);
    assert.equal(await materializeEntries(list, root), undefined, name);
  }
  writeFileSync(join(dir, 'grew'), 'longer than planned');
  const root = join(dir, 'changed');
  mkdirSync(root);
  await assert.rejects(materializeEntries([{ path: 'grew', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: t0, size: 4, content: { path: join(dir, 'grew') } }], root), /grew changed while it was being copied \(expected 4 bytes, read 19\)/);
});
