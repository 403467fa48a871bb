// COPY/ADD cases where slipway differed from docker's build (BuildKit + fsutil), each built end to
// end through the engine and its layers read back with GNU tar: what BuildKit writes is asserted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeHeader, padding, END_OF_ARCHIVE, type TarHeader } from '../../src/fs/tar.ts';
import { buildContext, makeContext, run } from './helpers.ts';

/** Each layer of the image in an OCI layout tar, as `mode uid/gid path[ -> link]` lines. */
async function layerListings(ociTar: string): Promise<string[][]> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-conform-'));
  try {
    await run('tar', ['-xf', ociTar, '-C', work]);
    const blob = (d: string) => join(work, 'blobs', ...d.split(':'));
    const index = JSON.parse(readFileSync(join(work, 'index.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
    const out: string[][] = [];
    for (const l of manifest.layers) {
      const { stdout } = await run('tar', ['--numeric-owner', '-tvzf', blob(l.digest)]);
      out.push(stdout.split('\n').filter(Boolean).map((line) => {
        const f = line.split(/\s+/);
        return `${f[0]} ${f[1]} ${f.slice(5).join(' ').replace(/\/$/, '')}`;
      }));
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function build(ctx: string, opts: { cwd?: string } = {}): Promise<string[][]> {
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-conform-out-')), 'image.tar');
  await buildContext(opts.cwd ?? ctx, { outputs: [`type=oci,dest=${out}`], sourceDateEpoch: '0' });
  return layerListings(out);
}

/** A tar archive from headers (and file bodies), byte by byte. */
function tarOf(entries: (Partial<TarHeader> & { name: string; body?: string })[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const type = e.type ?? 'file';
    parts.push(encodeHeader({ type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size: type === 'file' ? body.length : 0, mtime: 0, linkname: '', devmajor: 0, devminor: 0, xattrs: new Map(), ...e }));
    if (type === 'file') parts.push(body, Buffer.alloc(padding(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

test('1: a new COPY target directory is 0755 root (not the source dir\'s 0775); an octal --chmod makes created parents with that mode', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY d /d\nCOPY --chown=5:6 d /e\nCOPY --chmod=0700 d/f /p/q/\n', 'd/f': 'f', 'd/sub/g': 'g' });
  chmodSync(join(ctx, 'd'), 0o775);
  chmodSync(join(ctx, 'd/sub'), 0o775);
  const [plain, owned, chmodded] = await build(ctx);
  // The copied directory's own target is made by MkdirAll(0755); what is below keeps its modes.
  assert.deepEqual(plain, ['drwxr-xr-x 0/0 d', '-rw-r--r-- 0/0 d/f', 'drwxrwxr-x 0/0 d/sub', '-rw-r--r-- 0/0 d/sub/g']);
  assert.deepEqual(owned, ['drwxr-xr-x 5/6 e', '-rw-r--r-- 5/6 e/f', 'drwxrwxr-x 5/6 e/sub', '-rw-r--r-- 5/6 e/sub/g']);
  assert.deepEqual(chmodded, ['drwx------ 0/0 p', 'drwx------ 0/0 p/q', '-rwx------ 0/0 p/q/f']);
});

test('2: COPY --from=stage keeps the owners of the stage\'s files (context files are 0:0)', async () => {
  const ctx = makeContext({
    Dockerfile: 'FROM scratch AS s\nCOPY --chown=5:6 d /d\nCOPY --chown=7:8 a /a\nFROM scratch\nCOPY --from=s /d /e\nCOPY --from=s /a /b\nCOPY a /c\n',
    'd/f': 'f', a: 'a',
  });
  const [dir, file, context] = await build(ctx);
  assert.deepEqual(dir, ['drwxr-xr-x 0/0 e', '-rw-r--r-- 5/6 e/f']); // the new target dir: MkdirAll without a chown
  assert.deepEqual(file, ['-rw-r--r-- 7/8 b']);
  assert.deepEqual(context, ['-rw-r--r-- 0/0 c']);
});

test('3: a symlink in the COPY destination is followed inside the image (writes into its target)', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY base/ /\nCOPY x /link/sub/\nCOPY x /abs/deeper/\n', 'base/target/keep': 'k', x: 'x' });
  symlinkSync('target', join(ctx, 'base/link'));
  symlinkSync('/../target', join(ctx, 'base/abs')); // absolute, and `..` clamped at the root
  const [, rel, abs] = await build(ctx);
  assert.deepEqual(rel, ['drwxr-xr-x 0/0 target', 'drwxr-xr-x 0/0 target/sub', '-rw-r--r-- 0/0 target/sub/x']);
  assert.deepEqual(abs, ['drwxr-xr-x 0/0 target', 'drwxr-xr-x 0/0 target/deeper', '-rw-r--r-- 0/0 target/deeper/x']);
});

test('4: ADD of an archive is confined to its destination: a symlink to .. inside it resolves at the destination', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nADD foobar.tar /d\n' });
  writeFileSync(join(ctx, 'foobar.tar'), tarOf([
    { name: 'symldir1', type: 'symlink', linkname: '..', mode: 0o777 },
    { name: 'symldir1/etc', type: 'dir' },
    { name: 'symldir1/etc/myfile', body: 'mine' },
    { name: 'abs', type: 'symlink', linkname: '/etc', mode: 0o777 },
    { name: 'abs/other', body: 'other' },
  ]));
  const [layer] = await build(ctx);
  assert.deepEqual(layer, [
    'drwxr-xr-x 0/0 d', 'lrwxrwxrwx 0/0 d/abs -> /etc', 'drwxr-xr-x 0/0 d/etc', '-rw-r--r-- 0/0 d/etc/myfile', '-rw-r--r-- 0/0 d/etc/other',
    'lrwxrwxrwx 0/0 d/symldir1 -> ..',
  ]);
});

test('5: a tar entry with an empty name is skipped and the rest applies (a file replaces a directory)', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nADD t.tar /d/\n' });
  writeFileSync(join(ctx, 't.tar'), tarOf([{ name: '', body: '' }, { name: 'x', type: 'dir' }, { name: 'x/y', body: 'y' }, { name: 'x', body: 'file now' }, { name: 'z', body: 'z' }]));
  const [layer] = await build(ctx);
  assert.deepEqual(layer, ['drwxr-xr-x 0/0 d', '-rw-r--r-- 0/0 d/x', '-rw-r--r-- 0/0 d/z']);
});

test('6: .dockerignore `**` + `!d/none`: d holds nothing included, so COPY d fails as not found', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY d /d\n', '.dockerignore': '**\n!d/none\n', 'd/f': 'f' });
  await assert.rejects(build(ctx), /source not found: "d"/);
  // With the exception matching, d is there with just that file.
  const ok = makeContext({ Dockerfile: 'FROM scratch\nCOPY d /d\n', '.dockerignore': '**\n!d/none\n', 'd/f': 'f', 'd/none': 'n' });
  assert.deepEqual((await build(ok))[0], ['drwxr-xr-x 0/0 d', '-rw-r--r-- 0/0 d/none']);
});

test('7: a context directory given as a symlink is the directory it names (COPY . / works)', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY . /\n', 'a/b': 'b' });
  const linkDir = mkdtempSync(join(tmpdir(), 'slipway-ctxlink-'));
  symlinkSync(ctx, join(linkDir, 'ctx'));
  const [layer] = await build(ctx, { cwd: join(linkDir, 'ctx') });
  assert.deepEqual(layer, ['-rw-r--r-- 0/0 Dockerfile', 'drwxr-xr-x 0/0 a', '-rw-r--r-- 0/0 a/b']);
});

test('8: COPY refuses to replace a directory with a file, or a symlink with a directory, as BuildKit does', async () => {
  const files = { 'one/x/keep': 'k', 'two/x': 'file', 'three/l/inner': 'i', 'one/target/t': 't' };
  const ctx = makeContext({ ...files, Dockerfile: 'FROM scratch\nCOPY one /t\nCOPY two /t\n' });
  await assert.rejects(build(ctx), /cannot replace to directory \/t\/x with file/);
  const ctx2 = makeContext({ ...files, Dockerfile: 'FROM scratch\nCOPY one /t\nCOPY three /t\n' });
  symlinkSync('target', join(ctx2, 'one/l'));
  await assert.rejects(build(ctx2), /cannot copy to non-directory: \/t\/l/);
  // A file over a file, and a directory merged into a directory, are fine.
  mkdirSync(join(ctx2, 'four/x'), { recursive: true });
  writeFileSync(join(ctx2, 'four/x/new'), 'n');
  writeFileSync(join(ctx2, 'Dockerfile'), 'FROM scratch\nCOPY one /t\nCOPY four /t\n');
  assert.deepEqual((await build(ctx2))[1], ['drwxr-xr-x 0/0 t', 'drwxr-xr-x 0/0 t/x', '-rw-r--r-- 0/0 t/x/new']);
});
