import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdir, writeFile } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import diagnostics from 'node:diagnostics_channel';
import { writeLayer, applyLayer, recompressLayer, type LayerEntry } from '../../src/fs/index.ts';
import { readLayer } from '../../src/fs/apply.ts';
import { indexLayer } from '../../src/fs/view.ts';
import { snapshotTree, tempDir, ociLayout, isRoot, has, sh } from './helpers.ts';

const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_bind_service+ep, binary
const long = 'd'.repeat(60) + '/' + 'e'.repeat(120) + '/' + 'f'.repeat(150) + '.txt';

function sampleEntries(srcFile: string): LayerEntry[] {
  const t = 1_700_000_000;
  return [
    { path: 'usr/bin/ping', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: t, content: { buffer: Buffer.from('ping binary') }, xattrs: { 'security.capability': cap } },
    { path: 'tmp', type: 'dir', mode: 0o1777, uid: 0, gid: 0, mtime: t },
    { path: 'srv/shared', type: 'dir', mode: 0o2775, uid: 1000, gid: 50, mtime: t },
    { path: 'srv/shared/a-link', type: 'hardlink', mode: 0, uid: 0, gid: 0, mtime: t, linkTarget: 'srv/shared/z-data' },
    { path: 'srv/shared/z-data', type: 'file', mode: 0o640, uid: 1000, gid: 50, mtime: t, content: { buffer: Buffer.from('shared data\n') } },
    { path: 'etc/alternatives/x', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: t, linkTarget: '/usr/bin/ping' },
    { path: 'etc/rel', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: t, linkTarget: '../' + 'q'.repeat(150) },
    { path: long, type: 'file', mode: 0o644, uid: 2_500_000, gid: 3_000_000, mtime: t, content: { path: srcFile }, size: 70_000 },
    { path: 'naïve/日本語.txt', type: 'file', mode: 0o600, uid: 7, gid: 8, mtime: t, content: { buffer: Buffer.from('utf8 name') } },
    { path: 'dev/null2', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: t, devMajor: 1, devMinor: 3 },
    { path: 'dev/sda9', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: t, devMajor: 8, devMinor: 9 },
    { path: 'run/pipe', type: 'fifo', mode: 0o620, uid: 0, gid: 0, mtime: t },
    { path: 'empty', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: t, content: { buffer: Buffer.alloc(0) } },
  ];
}

test('writer: entries come out sorted, parents first, owners numeric, hardlink content on the first', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src.bin');
  await writeFile(src, Buffer.alloc(70_000, 7));
  const res = await writeLayer(sampleEntries(src), { dir: join(dir, 'store'), compression: 'gzip' });
  const names: string[] = [];
  for await (const e of readLayer(res.path)) {
    names.push(e.header.name);
    if (e.header.name === 'srv/shared/a-link') assert.equal(e.header.type, 'file', 'first of the group carries content');
    if (e.header.name === 'srv/shared/z-data') { assert.equal(e.header.type, 'hardlink'); assert.equal(e.header.linkname, 'srv/shared/a-link'); }
    if (e.header.name === 'usr/bin/ping') assert.deepEqual(e.header.xattrs.get('security.capability'), cap);
    if (e.header.name === long) { assert.equal(e.header.uid, 2_500_000); assert.equal(e.header.size, 70_000); }
  }
  assert.deepEqual(names.slice(0, 6), [long.split('/')[0], long.split('/').slice(0, 2).join('/'), long, 'dev', 'dev/null2', 'dev/sda9']);
  assert.ok(names.indexOf('srv') < names.indexOf('srv/shared'));
  const blob = await readFile(res.path);
  assert.equal(res.digest, 'sha256:' + createHash('sha256').update(blob).digest('hex'));
  assert.equal(res.diffID, 'sha256:' + createHash('sha256').update(gunzipSync(blob)).digest('hex'));
  assert.equal(res.size, blob.length);
  assert.equal(res.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const listing = sh('tar', ['-tvzf', res.path]);
  assert.match(listing, /^hrw-r----- 1000\/50 .* srv\/shared\/z-data link to srv\/shared\/a-link$/m);
  assert.doesNotMatch(listing, /root/, 'no user names in the archive');
});

test('writer: a layer of one chunk starts no compression worker, a larger zstd one does (gzip runs on the libuv thread pool); same bytes as 1 worker', async (t) => {
  const dir = await tempDir(t);
  let started = 0;
  const count = () => { started++; };
  diagnostics.subscribe('worker_threads', count);
  t.after(() => diagnostics.unsubscribe('worker_threads', count));
  const file = (size: number): LayerEntry[] => [{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 5, content: { buffer: Buffer.alloc(size, 7) } }];
  for (const compression of ['gzip', 'zstd'] as const) {
    const before = started;
    const small = await writeLayer(file(100_000), { dir: join(dir, 'n'), compression, workers: 2, chunkSize: 1 << 20 });
    assert.equal(started, before, `${compression}: no worker for one chunk`);
    assert.equal(small.digest, (await writeLayer(file(100_000), { dir: join(dir, '1'), compression, workers: 1, chunkSize: 1 << 20 })).digest);
    const big = await writeLayer(file(3 << 20), { dir: join(dir, 'n'), compression, workers: 2, chunkSize: 1 << 20 });
    assert.equal(started - before, compression === 'zstd' ? 2 : 0, `${compression}: the pool for several chunks`);
    assert.equal(big.digest, (await writeLayer(file(3 << 20), { dir: join(dir, '1'), compression, workers: 1, chunkSize: 1 << 20 })).digest);
  }
});

test('writer: same entries → same bytes whatever the worker count; mtimes clamped', async (t) => {
  const dir = await tempDir(t);
  const big = join(dir, 'big');
  await writeFile(big, Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7919) % 251)));
  const entries = (): LayerEntry[] => [
    { path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 2_000_000_000, content: { path: big }, size: 3_000_000 },
    { path: 'small', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 5, content: { buffer: Buffer.from('x') } },
  ];
  for (const compression of ['gzip', 'zstd'] as const) {
    const a = await writeLayer(entries(), { dir: join(dir, 'a'), compression, workers: 1, chunkSize: 1 << 20, sourceDateEpoch: 1_000_000 });
    const b = await writeLayer(entries(), { dir: join(dir, 'b'), compression, workers: 4, chunkSize: 1 << 20, sourceDateEpoch: 1_000_000 });
    assert.equal(a.digest, b.digest, compression);
    assert.equal(a.diffID, b.diffID);
    const mt: Record<string, number> = {};
    for await (const e of readLayer(b.path)) mt[e.header.name] = e.header.mtime;
    assert.deepEqual(mt, { big: 1_000_000, small: 5 });
    if (compression === 'gzip') {
      // Three 1 MiB chunks + the tail → several gzip members, which GNU tar reads as one stream.
      assert.equal(sh('tar', ['-tzf', b.path]), 'big\nsmall\n');
    } else assert.equal(sh('tar', ['--zstd', '-tf', b.path]), 'big\nsmall\n');
  }
});

test('recompressLayer: a layer in another compression is byte for byte the one writeLayer makes in it, whatever the worker count; uncompressed: digest = diffID', async (t) => {
  const dir = await tempDir(t);
  const data = Buffer.from(Array.from({ length: 3_000_000 }, (_, i) => (i * 7919) % 251));
  const entries = (): LayerEntry[] => [
    { path: 'data', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 7, content: { buffer: data } },
    { path: 'etc/x', type: 'file', mode: 0o600, uid: 1, gid: 2, mtime: 7, content: { buffer: Buffer.from('x\n') } },
  ];
  const gzip = await writeLayer(entries(), { dir: join(dir, 'g'), compression: 'gzip', chunkSize: 1 << 20 });
  for (const [compression, level] of [['zstd', 3], ['zstd', 19], ['gzip', 1], ['none', undefined]] as const) {
    const direct = await writeLayer(entries(), { dir: join(dir, 'd'), compression, level, chunkSize: 1 << 20, workers: 1 });
    for (const workers of [1, 4]) {
      const again = await recompressLayer(gzip.path, { dir: join(dir, `r${workers}`), compression, level, chunkSize: 1 << 20, workers });
      assert.equal(again.digest, direct.digest, `${compression} ${level} with ${workers} workers`);
      assert.equal(again.diffID, gzip.diffID);
      assert.equal(again.mediaType, direct.mediaType);
    }
    const back = await recompressLayer(direct.path, { dir: join(dir, 'b'), compression: 'gzip', chunkSize: 1 << 20 });
    assert.equal(back.digest, gzip.digest, `${compression} back to gzip gives the gzip blob`);
  }
  const plain = await recompressLayer(gzip.path, { dir: join(dir, 'p'), compression: 'none' });
  assert.equal(plain.digest, plain.diffID);
  assert.equal(plain.mediaType, 'application/vnd.oci.image.layer.v1.tar');
  const zstd = await recompressLayer(gzip.path, { dir: join(dir, 'z'), compression: 'zstd', chunkSize: 1 << 20 });
  assert.equal(zstd.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
  if (has('zstd')) sh('zstd', ['-q', '-t', zstd.path]);
});

test('writer: GNU tar, umoci and our applier extract the same tree', async (t) => {
  if (!isRoot()) return t.skip('needs root: owners, devices and xattrs');
  if (!has('umoci') || !has('getfattr')) return t.skip('needs umoci and getfattr (apt install umoci attr)');
  const dir = await tempDir(t);
  const src = join(dir, 'src.bin');
  await writeFile(src, Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256)));
  // 16 KiB chunks: the blob is many gzip members, which both readers must take as one stream.
  const res = await writeLayer(sampleEntries(src), { dir: join(dir, 'store'), compression: 'gzip', chunkSize: 16 << 10 });
  assert.ok((await readFile(res.path)).subarray(1).includes(Buffer.from([0x1f, 0x8b, 0x08])), 'several members');
  const gnu = join(dir, 'gnu');
  await mkdir(gnu);
  sh('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpzf', res.path, '-C', gnu]);
  const ours = join(dir, 'ours');
  await mkdir(ours);
  await applyLayer(res.path, ours);
  await ociLayout(join(dir, 'layout'), [{ ...res, blob: await readFile(res.path) }]);
  sh('umoci', ['unpack', '--image', join(dir, 'layout') + ':test', join(dir, 'bundle')]);
  const a = await snapshotTree(gnu, { mtimes: true });
  const b = await snapshotTree(ours, { mtimes: true });
  const c = await snapshotTree(join(dir, 'bundle', 'rootfs'), { mtimes: true });
  assert.deepEqual(b, a, 'our applier vs GNU tar');
  assert.deepEqual(c, a, 'umoci vs GNU tar');
  assert.equal(a['usr/bin/ping'].mode, '4755');
  assert.match(a['usr/bin/ping'].xattrs ?? '', /security.capability=0x0100000200200000/);
  assert.equal(a['srv/shared'].mode, '2775');
  assert.equal(a['tmp'].mode, '1777');
  assert.equal(a[long].uid, 2_500_000);
  assert.equal(a['dev/sda9'].dev, '8:9');
  assert.equal(a['srv/shared/z-data'].nlinkGroup, 'srv/shared/a-link');
});

test('writer: the index a layer is written with is the one read back from its tar (long names, links, owners, identity files)', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src.bin');
  await writeFile(src, Buffer.alloc(70_000, 3));
  const entries: LayerEntry[] = [
    ...sampleEntries(src),
    { path: 'etc/passwd', type: 'file', mode: 0o100644, uid: 0, gid: 0, mtime: 9, content: { buffer: Buffer.from('root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n') } },
    { path: 'etc/group', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 9, content: { path: src }, size: 70_000 },
    { path: 'opt/x/y', type: 'file', mode: 0o755, uid: 1, gid: 1, mtime: 1.7, content: { buffer: Buffer.from('#!/bin/sh\n') } },
  ];
  for (const sourceDateEpoch of [undefined, 5]) {
    const res = await writeLayer(entries, { dir: join(dir, 'store'), compression: 'gzip', chunkSize: 16 << 10, sourceDateEpoch });
    assert.deepEqual(res.index, await indexLayer(res.path));
    assert.ok(res.index.files['etc/passwd'] && res.index.files['etc/group']);
  }
});

async function drain(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const p of pieces) all.push(p);
  return Buffer.concat(all);
}

test('writer: a growing blob is read while it is written, byte for byte the blob it becomes; read after, whole; a failed write fails its reader', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'noise.bin');
  // Random bytes are stored, not deflated: the blob grows at the pace of the file's reads.
  await writeFile(src, randomBytes(6 << 20));
  const entries = (size: number): LayerEntry[] => [{ path: 'big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1, content: { path: src }, size }];
  const size = (await readFile(src)).length;
  const seen: { early: Buffer[]; beforeDone: number; reached: boolean; after?: Buffer } = { early: [], beforeDone: 0, reached: false };
  let following: Promise<void> | undefined;
  let written = false;
  const res = await writeLayer(entries(size), {
    dir: join(dir, 'store'), compression: 'gzip', chunkSize: 1 << 20,
    growing: (blob) => {
      following = (async () => {
        seen.reached = await blob.reached(1 << 20);
        for await (const piece of blob.read()) {
          seen.early.push(piece);
          if (!written) seen.beforeDone += piece.length;
        }
        await blob.done;
        seen.after = await drain(blob.read());
      })();
    },
  });
  written = true;
  await following;
  const blob = await readFile(res.path);
  assert.ok(seen.reached, 'the blob reached 1 MiB');
  assert.ok(seen.beforeDone > 0, `${seen.beforeDone} of ${blob.length} bytes read before the write returned`);
  assert.deepEqual(Buffer.concat(seen.early), blob, 'what was read as it grew is the blob');
  assert.deepEqual(seen.after, blob, 'read again once written: the blob');
  assert.equal(`sha256:${createHash('sha256').update(blob).digest('hex')}`, res.digest);

  // Fewer bytes than the entry says: the write fails, and so do its reader and `reached`.
  let failure: Promise<unknown> | undefined;
  let small: Promise<boolean> | undefined;
  await assert.rejects(writeLayer(entries(size + 1), {
    dir: join(dir, 'store'), compression: 'gzip',
    growing: (blob) => { small = blob.reached(size * 2); failure = drain(blob.read()).then(() => 'read to an end', (e: unknown) => e); },
  }));
  assert.match(String(await failure), /changed while it was being written/, 'the reader of a failed blob fails with its error');
  assert.equal(await small!, false);
});
