import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { indexLayer, layerView, applyLayer, resolveChown, flattenView, flatLayerView, isFlatView } from '../../src/fs/index.ts';
import { lookupUser } from '../../src/fs/identity.ts';
import { tempDir, snapshotTree } from './helpers.ts';

type E = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number };

/** Crafted with tar-stream (not our writer), entries in exactly the given order. */
async function craft(entries: E[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of p) chunks.push(c as Buffer); })();
  for (const e of entries) {
    await new Promise<void>((res, rej) => p.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? 0o644, uid: 0, gid: 0, mtime: new Date(1000) }, e.type && e.type !== 'file' ? Buffer.alloc(0) : (e.body ?? e.name), (err) => (err ? rej(err) : res())));
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const layers = async (): Promise<Buffer[]> => [
  await craft([
    { name: 'etc', type: 'directory', mode: 0o755 },
    { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\nold:x:5:5::/:/bin/sh\n' },
    { name: 'etc/group', body: 'root:x:0:\nwheel:x:10:\n' },
    { name: 'data', type: 'directory' }, { name: 'data/lower1' }, { name: 'data/sub', type: 'directory' }, { name: 'data/sub/lower2' },
    { name: 'keep', type: 'directory' }, { name: 'keep/a' }, { name: 'keep/b' },
    { name: 'gone', type: 'directory' }, { name: 'gone/inner' },
  ]),
  await craft([
    { name: 'etc/passwd', body: 'root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n' },
    // The opaque marker comes AFTER this layer's own content of data/: that content must stay.
    { name: 'data/new1' }, { name: 'data/sub', type: 'directory' }, { name: 'data/sub/new2' },
    { name: 'data/.wh..wh..opq' },
    { name: 'data/new3' },
    { name: 'keep/.wh.a' },
    { name: '.wh.gone' },
    { name: 'etc/group2', type: 'link', linkname: 'etc/group' },
  ]),
  await craft([{ name: 'etc/.wh.group' }, { name: 'etc/group', body: 'root:x:0:\napp:x:1002:\nstaff:x:50:\n' }]),
];

test('layer view: files and metadata after whiteouts and an opaque dir placed anywhere in the tar', async () => {
  const v = await layerView(await layers());
  assert.deepEqual([...v.paths()].sort(), ['data', 'data/new1', 'data/new3', 'data/sub', 'data/sub/new2', 'etc', 'etc/group', 'etc/group2', 'etc/passwd', 'keep', 'keep/b']);
  const id = v.identity();
  assert.match(id.passwd ?? '', /^app:x:1001/m);
  assert.deepEqual(resolveChown('app', id), { uid: 1001, gid: 1002 });
  assert.deepEqual(resolveChown('app:staff', id), { uid: 1001, gid: 50 });
  assert.deepEqual(resolveChown('app:', id), { uid: 1001, gid: 1002 });
  assert.deepEqual(resolveChown(':staff', id), { uid: 0, gid: 50 });
  assert.deepEqual(lookupUser('old', { passwd: 'old:x:5:6::/:/bin/sh' }), { uid: 5, gid: 6 });
  assert.throws(() => resolveChown('old', id), /unable to find user old/);
  assert.equal(v.stat('/etc')?.type, 'dir');
  assert.equal(v.stat('gone'), undefined);
});

test('layer index: the layers\' indexes, through JSON as the cache dir keeps them, give the same view as their tars', async () => {
  const ls = await layers();
  const fromTars = await layerView(ls);
  const indexes = await Promise.all(ls.map(async (l) => JSON.parse(JSON.stringify(await indexLayer(l))) as Awaited<ReturnType<typeof indexLayer>>));
  // Only the identity files' bytes are kept, not the other files'.
  assert.deepEqual(indexes.map((i) => Object.keys(i.files).sort()), [['etc/group', 'etc/passwd'], ['etc/passwd'], ['etc/group']]);
  const fromIndexes = await layerView(indexes);
  const all = [...fromTars.paths()].sort();
  assert.deepEqual([...fromIndexes.paths()].sort(), all);
  for (const p of all) assert.deepEqual(fromIndexes.stat(p), fromTars.stat(p), p);
  assert.deepEqual(fromIndexes.identity(), fromTars.identity());
  assert.match(fromIndexes.identity().group ?? '', /staff/);
});

test('flat view: a view made flat, through JSON as the cache dir keeps it, answers as the merged view did', async () => {
  const ls = await layers();
  const indexes = await Promise.all(ls.map((l) => indexLayer(l)));
  const merged = await layerView(indexes);
  const saved: unknown = JSON.parse(JSON.stringify(flattenView(merged)));
  assert.ok(isFlatView(saved));
  assert.ok(!isFlatView({ ...saved, version: 2 }) && !isFlatView(indexes[0]), 'another shape is not taken for one');
  const flat = flatLayerView(saved);
  const all = [...merged.paths()].sort();
  assert.deepEqual([...flat.paths()].sort(), all);
  for (const p of [...all, 'gone', 'keep/a', 'nothing/here']) {
    const { layer: _a, ...want } = merged.stat(p) ?? { layer: 0 };
    const { layer: _b, ...got } = flat.stat(p) ?? { layer: 0 };
    assert.deepEqual(got, want, p);
  }
  assert.equal(flat.stat('/etc/')?.type, 'dir', 'paths are cleaned as the merged view cleans them');
  assert.equal(flat.stat('etc/group2')?.size, merged.stat('etc/group2')?.size, 'a hard link has its target\'s metadata');
  assert.deepEqual(flat.identity(), merged.identity());
  assert.deepEqual(flat.file('etc/passwd'), merged.file('etc/passwd'));
  assert.equal(flat.file('data/new1'), undefined, 'only the identity files\' bytes are kept');
});

test('apply: the same layers give the same tree as the view says, opaque keeps same-layer content', async (t) => {
  const root = join(await tempDir(t), 'root');
  await mkdir(root);
  const ls = await layers();
  for (const l of ls) await applyLayer((async function* () { yield l; })(), root);
  const tree = await snapshotTree(root);
  const v = await layerView(ls);
  assert.deepEqual(Object.keys(tree).sort(), [...v.paths()].sort());
  assert.equal(await readFile(join(root, 'etc/group2'), 'utf8'), 'root:x:0:\nwheel:x:10:\n', 'hardlink keeps the old inode');
  assert.match(await readFile(join(root, 'etc/group'), 'utf8'), /staff/);
});

test('layer view scan: results follow the files through whiteouts, opaque dirs, replacement and hardlinks; wanted files are not scanned', async () => {
  const seen: string[] = [];
  const v = await layerView(await layers(), ['etc/passwd'], async (path, node, body) => {
    seen.push(path);
    const parts: Buffer[] = [];
    for await (const b of body) parts.push(b);
    return `${node.size}:${Buffer.concat(parts).toString('utf8')}`;
  });
  assert.ok(!seen.includes('etc/passwd'));
  assert.equal(v.scanned('keep/b'), '6:keep/b');
  assert.equal(v.scanned('keep/a'), undefined, 'whited out');
  assert.equal(v.scanned('data/lower1'), undefined, 'below an opaque dir');
  assert.equal(v.scanned('gone/inner'), undefined);
  assert.equal(v.scanned('data/sub/new2'), '13:data/sub/new2');
  assert.equal(v.scanned('etc/group2'), '22:root:x:0:\nwheel:x:10:\n', 'the hardlink has what its target had then');
  assert.match(v.scanned('/etc/group') ?? '', /staff/);
});
