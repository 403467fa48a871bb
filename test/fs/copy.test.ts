import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, symlink, link, chmod, utimes } from 'node:fs/promises';
import { createServer } from 'node:http';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { planCopy, dirTree, fileTree, checksumEntries, fetchRemote, writeLayer, applyLayer, type LayerEntry } from '../../src/fs/index.ts';
import { includeList } from '../../src/fs/tree.ts';
import type { CopyRequest } from '../../src/fs/copy.ts';
import { parseChmod } from '../../src/fs/chmod.ts';
import { globMatch, excludeMatch } from '../../src/fs/glob.ts';
import { UserError } from '../../src/errors.ts';
import { tempDir, sh, has, snapshotTree } from './helpers.ts';

const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:App:/home/app:/bin/sh\n';
const group = 'root:x:0:\nstaff:x:50:\napp:x:1002:\n';

async function context(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t);
  const c = join(dir, 'ctx');
  await mkdir(join(c, 'src/lib'), { recursive: true });
  await writeFile(join(c, 'src/main.go'), 'package main\n');
  await writeFile(join(c, 'src/lib/util.go'), 'package lib\n');
  await writeFile(join(c, 'src/lib/util_test.go'), 'package lib\n');
  await writeFile(join(c, 'a.txt'), 'a');
  await writeFile(join(c, 'b.txt'), 'b');
  await writeFile(join(c, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(c, 'run.sh'), 0o750);
  await chmod(join(c, 'src'), 0o700);
  await symlink('a.txt', join(c, 'link-to-a'));
  await symlink('../a.txt', join(c, 'src/lib/rel'));
  await link(join(c, 'src/main.go'), join(c, 'src/main-hard.go'));
  return c;
}

const plan = async (c: string, req: Partial<CopyRequest> & Pick<CopyRequest, 'sources' | 'dest'>): Promise<Record<string, string>> => {
  const { entries } = await planCopy({ from: dirTree(c, { describe: 'the build context' }), mtime: 42, identity: { passwd, group }, ...req });
  return Object.fromEntries(entries.map((e) => [e.path, `${e.type} ${e.mode.toString(8)} ${e.uid}:${e.gid}${e.linkTarget ? ' -> ' + e.linkTarget : ''}`]));
};

test('COPY: a directory copies its contents; parents 0755 root; default owner 0:0; links kept', async (t) => {
  const c = await context(t);
  assert.deepEqual(await plan(c, { sources: ['src'], dest: '/opt/app/' }), {
    opt: 'dir 755 0:0',
    'opt/app': 'dir 755 0:0', // a new target directory is made 0755 (fsutil prepareTargetDir), not the source's 0700
    'opt/app/lib': 'dir 755 0:0',
    'opt/app/lib/rel': 'symlink 777 0:0 -> ../a.txt',
    'opt/app/lib/util.go': 'file 644 0:0',
    'opt/app/lib/util_test.go': 'file 644 0:0',
    'opt/app/main-hard.go': 'file 644 0:0',
    'opt/app/main.go': 'hardlink 644 0:0 -> opt/app/main-hard.go',
  });
});

test('COPY: file rename, into a directory, WORKDIR-relative, top-level symlink followed', async (t) => {
  const c = await context(t);
  assert.deepEqual(await plan(c, { sources: ['run.sh'], dest: 'bin/start' , workdir: '/srv' }), { srv: 'dir 755 0:0', 'srv/bin': 'dir 755 0:0', 'srv/bin/start': 'file 750 0:0' });
  assert.deepEqual(await plan(c, { sources: ['run.sh'], dest: '.', workdir: '/srv' }), { srv: 'dir 755 0:0', 'srv/run.sh': 'file 750 0:0' });
  assert.deepEqual(await plan(c, { sources: ['link-to-a'], dest: '/x/' }), { x: 'dir 755 0:0', 'x/link-to-a': 'file 644 0:0' });
});

test('COPY: globs use filepath.Match; several sources need a trailing slash', async (t) => {
  const c = await context(t);
  assert.deepEqual(Object.keys(await plan(c, { sources: ['*.txt'], dest: '/d' })), ['d', 'd/a.txt', 'd/b.txt']);
  assert.deepEqual(Object.keys(await plan(c, { sources: ['src/*/util?go'], dest: '/d/' })), ['d', 'd/util.go']);
  assert.ok(globMatch('[a-c].txt', 'b.txt') && !globMatch('[^a-c].txt', 'b.txt') && !globMatch('*', 'a/b') && globMatch('\\*', '*'));
  await assert.rejects(plan(c, { sources: ['a.txt', 'b.txt'], dest: '/d' }), (e: Error) => e instanceof UserError && /more than one source needs a directory destination ending in \//.test(e.message));
  await assert.rejects(plan(c, { sources: ['nope.txt'], dest: '/d' }), /source not found: "nope.txt" in the build context/);
  await assert.rejects(plan(c, { sources: ['*.nope'], dest: '/d/' }), /no source files match "\*.nope"/);
});

test('COPY: --chown by name and number, --chmod octal and symbolic', async (t) => {
  const c = await context(t);
  assert.deepEqual(await plan(c, { sources: ['run.sh'], dest: '/h/', chown: 'app' }), { h: 'dir 755 1001:1002', 'h/run.sh': 'file 750 1001:1002' });
  assert.deepEqual(await plan(c, { sources: ['run.sh'], dest: '/h/', chown: 'app:staff', chmod: '0640' }), { h: 'dir 640 1001:50', 'h/run.sh': 'file 640 1001:50' });
  assert.deepEqual(await plan(c, { sources: ['run.sh'], dest: '/h/', chown: '7' }), { h: 'dir 755 7:7', 'h/run.sh': 'file 750 7:7' });
  assert.deepEqual(await plan(c, { sources: ['a.txt'], dest: '/h/', chmod: 'u+x,g+w,o=' }), { h: 'dir 755 0:0', 'h/a.txt': 'file 760 0:0' });
  assert.equal(parseChmod('a=rX')(0o600, true), 0o555);
  assert.equal(parseChmod('a=rX')(0o600, false), 0o444);
  assert.equal(parseChmod('u+s,+t')(0o755, false), 0o5755);
  await assert.rejects(plan(c, { sources: ['a.txt'], dest: '/h/', chown: 'ghost' }), /unable to find user ghost/);
  await assert.rejects(plan(c, { sources: ['a.txt'], dest: '/h/', chmod: 'u+q' }), /invalid --chmod/);
});

test('COPY: --parents (with ./ pivot), --exclude, existing destination keeps its metadata', async (t) => {
  const c = await context(t);
  assert.deepEqual(Object.keys(await plan(c, { sources: ['src/lib/util.go', 'a.txt'], dest: '/p/', parents: true })), ['p', 'p/a.txt', 'p/src', 'p/src/lib', 'p/src/lib/util.go']);
  assert.deepEqual(Object.keys(await plan(c, { sources: ['src/./lib/util.go'], dest: '/p/', parents: true })), ['p', 'p/lib', 'p/lib/util.go']);
  assert.deepEqual(Object.keys(await plan(c, { sources: ['src'], dest: '/e/', exclude: ['**/*_test.go', 'main*'] })), ['e', 'e/lib', 'e/lib/rel', 'e/lib/util.go']);
  assert.ok(excludeMatch('**/*.go', 'a/b/c.go') && excludeMatch('a', 'a/b') && !excludeMatch('*.go', 'a/b.go'));
  const existing = async (p: string) => (p === 'usr' || p === 'usr/local' ? { type: 'dir' as const, mode: 0o775, uid: 0, gid: 50, mtime: 9 } : undefined);
  assert.deepEqual(await plan(c, { sources: ['a.txt'], dest: '/usr/local', existing }), { usr: 'dir 775 0:50', 'usr/local': 'dir 775 0:50', 'usr/local/a.txt': 'file 644 0:0' });
  // --link: the layer may not depend on the destination → created parents as BuildKit's scratch copy.
  assert.deepEqual(await plan(c, { sources: ['a.txt'], dest: '/usr/local/', existing, link: true }), { usr: 'dir 755 0:0', 'usr/local': 'dir 755 0:0', 'usr/local/a.txt': 'file 644 0:0' });
});

test('COPY: a directory tree walked in one call per directory plans what lstat and readdir per path plan', async (t) => {
  const c = await context(t);
  await mkdir(join(c, 'src/lib/deep/er'), { recursive: true });
  await writeFile(join(c, 'src/lib/deep/er/x.go'), 'x');
  const fast = dirTree(c, { describe: 'the build context' });
  assert.ok(fast.childrenSync, 'a directory on disk lists its children with their metadata in one call');
  const { childrenSync: _, ...perPath } = fast;
  const existing = async (p: string) => (p === 'srv' ? { type: 'dir' as const, mode: 0o711, uid: 7, gid: 7, mtime: 9 } : undefined);
  const requests: Array<Partial<CopyRequest> & Pick<CopyRequest, 'sources' | 'dest'>> = [
    { sources: ['.'], dest: '/' },
    { sources: ['src', 'a.txt'], dest: '/srv/new/deeper/', existing },
    { sources: ['src/./lib'], dest: '/p/', parents: true, chown: 'app', chmod: 'g+w' },
    { sources: ['src'], dest: '/e/', exclude: ['**/er', '*.txt'] },
  ];
  for (const req of requests) {
    const viaChildren = await planCopy({ from: fast, mtime: 42, identity: { passwd, group }, ...req });
    const viaPaths = await planCopy({ from: perPath, mtime: 42, identity: { passwd, group }, ...req });
    assert.deepEqual(viaChildren.entries, viaPaths.entries, JSON.stringify(req.sources));
    // Every entry's parent directory is in the plan (the walk's children find theirs without a lookup).
    const paths = new Set(viaChildren.entries.map((e) => e.path));
    for (const e of viaChildren.entries) if (e.path.includes('/')) assert.ok(paths.has(e.path.slice(0, e.path.lastIndexOf('/'))), e.path);
  }
  const planned = await planCopy({ from: fast, sources: ['src'], dest: '/srv/new/deeper/', existing, mtime: 42 });
  assert.deepEqual(planned.entries.slice(0, 3).map((e) => `${e.path} ${e.mode.toString(8)} ${e.uid}`), ['srv 711 7', 'srv/new 755 0', 'srv/new/deeper 755 0']);
});

test('COPY → layer → applied tree matches the source files', async (t) => {
  const c = await context(t);
  const dir = await tempDir(t);
  const { entries } = await planCopy({ sources: ['.'], dest: '/app/', from: dirTree(c), mtime: 0 });
  const res = await writeLayer(entries, { dir: join(dir, 'store') });
  const root = join(dir, 'root');
  await mkdir(root);
  await applyLayer(res.path, root);
  const applied = await snapshotTree(join(root, 'app'));
  const source = await snapshotTree(c);
  for (const v of Object.values(source)) { v.uid = 0; v.gid = 0; }
  assert.deepEqual(applied, source);
});

test('content checksum: content, mode, owner, link target count; mtimes do not', async (t) => {
  const c = await context(t);
  const sum = async (req: Partial<CopyRequest> = {}): Promise<string> => checksumEntries((await planCopy({ sources: ['.'], dest: '/', from: dirTree(c), mtime: 0, ...req })).entries);
  const a = await sum();
  await utimes(join(c, 'a.txt'), 1, 1);
  assert.equal(await sum(), a);
  await chmod(join(c, 'a.txt'), 0o600);
  const b = await sum();
  assert.notEqual(b, a);
  assert.notEqual(await sum({ chown: '5' }), b);
  await writeFile(join(c, 'b.txt'), 'B');
  assert.notEqual(await sum(), b);
});

async function archives(t: Parameters<typeof tempDir>[0]): Promise<string> {
  const dir = await tempDir(t);
  const src = join(dir, 'payload');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc/conf'), 'k=v\n');
  await writeFile(join(src, 'big'), Buffer.alloc(2 << 20, 1));
  const out = join(dir, 'ctx');
  await mkdir(out);
  sh('tar', ['--owner=123', '--group=456', '--numeric-owner', '-cf', join(out, 'p.tar'), '-C', src, '.']);
  sh('bash', ['-c', `cd ${out} && gzip -k p.tar && bzip2 -k p.tar && xz -k p.tar && zstd -q p.tar && cp p.tar.gz notatar.gz.txt && echo plain > readme.gz`]);
  return out;
}

test('ADD: local tar archives (plain, gzip, bzip2, xz, zstd) are extracted with their owners', async (t) => {
  if (!has('bzip2') || !has('xz') || !has('zstd')) return t.skip('needs bzip2, xz and zstd');
  const c = await archives(t);
  for (const f of ['p.tar', 'p.tar.gz', 'p.tar.bz2', 'p.tar.xz', 'p.tar.zst', 'notatar.gz.txt']) {
    const p = await planCopy({ instruction: 'ADD', sources: [f], dest: '/x', from: dirTree(c), mtime: 0, unpackArchives: true });
    const m = Object.fromEntries(p.entries.map((e) => [e.path, `${e.type} ${e.uid}:${e.gid} ${e.size ?? ''}`]));
    assert.equal(m['x/etc/conf'], 'file 123:456 4', f);
    assert.equal(m['x/big'], 'file 123:456 2097152', f);
    assert.equal(await checksumEntries(p.entries), await checksumEntries((await planCopy({ instruction: 'ADD', sources: ['p.tar'], dest: '/x', from: dirTree(c), mtime: 0, unpackArchives: true })).entries));
    await p.cleanup();
  }
  const plain = await planCopy({ instruction: 'ADD', sources: ['readme.gz'], dest: '/x/', from: dirTree(c), mtime: 0, unpackArchives: true });
  assert.deepEqual(plain.entries.map((e) => e.path), ['x', 'x/readme.gz'], 'a non-archive is copied as a file');
  const chowned = await planCopy({ instruction: 'ADD', sources: ['p.tar.xz'], dest: '/x', chown: '1:2', from: dirTree(c), mtime: 0, unpackArchives: true });
  assert.ok(chowned.entries.every((e) => e.uid === 1 && e.gid === 2));
});

test('ADD <url>: name, mode 0600, Last-Modified mtime, --checksum; heredoc sources', async (t) => {
  const body = Buffer.from('remote content\n');
  const server = createServer((req, res) => {
    if (req.url === '/files/tool.tgz') { res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }); res.end(body); }
    else if (req.url === '/dl?id=3') { res.writeHead(200, { 'content-disposition': 'attachment; filename="report.csv"' }); res.end(body); }
    else { res.writeHead(404); res.end(); }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const good = 'sha256:' + createHash('sha256').update(body).digest('hex');
  const f = await fetchRemote(`${base}/files/tool.tgz`, { checksum: good, fallbackMtime: 5 });
  t.after(() => f.cleanup());
  assert.equal(f.name, 'tool.tgz');
  assert.equal(f.mtime, Date.parse('2015-10-21T07:28:00Z') / 1000);
  const { entries } = await planCopy({ instruction: 'ADD', sources: [f.name], dest: '/opt/', from: f.tree, mtime: 0, unpackArchives: false });
  const e = entries.find((x) => x.path === 'opt/tool.tgz') as LayerEntry;
  assert.equal(e.mode, 0o600);
  assert.equal(e.mtime, f.mtime);
  const g = await fetchRemote(`${base}/dl?id=3`, { fallbackMtime: 5 });
  t.after(() => g.cleanup());
  assert.equal(g.name, 'report.csv');
  assert.equal(g.mtime, 5);
  await assert.rejects(fetchRemote(`${base}/files/tool.tgz`, { checksum: 'sha256:' + '0'.repeat(64), fallbackMtime: 0 }), /checksum of .* is sha256:[0-9a-f]{64}, expected sha256:0000/);
  await assert.rejects(fetchRemote(`${base}/missing`, { fallbackMtime: 0 }), /HTTP 404/);
  await assert.rejects(fetchRemote('ftp://x/y', { fallbackMtime: 0 }), /unsupported URL scheme/);
  const heredoc = fileTree('script.sh', { content: { buffer: Buffer.from('echo hi\n') }, size: 8, mode: 0o644, mtime: 0 }, 'heredoc');
  const h = await planCopy({ sources: ['script.sh'], dest: '/usr/local/bin/run', chmod: '755', from: heredoc, mtime: 0 });
  assert.deepEqual(h.entries.map((x) => `${x.path} ${x.mode.toString(8)}`), ['usr 755', 'usr/local 755', 'usr/local/bin 755', 'usr/local/bin/run 755']);
});

test('COPY: the caller’s .dockerignore decision, as a predicate or a pre-walked list, hides paths', async (t) => {
  const c = await context(t);
  const fromList = await planCopy({ sources: ['.'], dest: '/', from: dirTree(c, { include: includeList(['src/lib/util.go', 'a.txt']) }), mtime: 0 });
  assert.deepEqual(fromList.entries.map((e) => e.path), ['a.txt', 'src', 'src/lib', 'src/lib/util.go']);
  const pred = dirTree(c, { include: (rel) => !rel.endsWith('.txt'), describe: 'the build context' });
  await assert.rejects(planCopy({ sources: ['a.txt'], dest: '/', from: pred, mtime: 0 }), /source not found: "a.txt" in the build context/);
});

test('a glob matching 150,000 names plans them all (no argument-count limit on the way)', async () => {
  const names = Array.from({ length: 150_000 }, (_, i) => `f${String(i).padStart(6, '0')}`);
  const tree = {
    describe: 'a wide directory',
    async lstat(rel: string) {
      if (rel === '' || rel === 'd') return { type: 'dir' as const, mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 };
      return rel.startsWith('d/f') ? { type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, content: { buffer: new Uint8Array(0) } } : undefined;
    },
    readdir: async (rel: string) => (rel === '' ? ['d'] : rel === 'd' ? names : []),
    resolve: async (rel: string) => rel,
  };
  const { entries } = await planCopy({ sources: ['d/f*'], dest: '/wide/', from: tree, mtime: 0 });
  assert.equal(entries.filter((e) => e.type === 'file').length, names.length);
});
