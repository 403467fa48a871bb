// A table of hostile layers. Each case applies its layers onto a fresh root next to an "outside"
// directory (absolute links point there), then checks nothing outside the root appeared or changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, readdir, lstat, readlink } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { pack, type Header } from 'tar-stream';
import { applyLayer } from '../../src/fs/index.ts';
import { UserError } from '../../src/errors.ts';
import { snapshotTree, tempDir, isRoot } from './helpers.ts';

type E = { name: string; type?: Header['type']; linkname?: string; body?: string; mode?: number; devmajor?: number; devminor?: number };

async function craft(entries: E[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of p) chunks.push(c as Buffer); })();
  for (const e of entries) {
    await new Promise<void>((res, rej) => {
      const h = { name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), devmajor: e.devmajor, devminor: e.devminor, mtime: new Date(0) };
      if ((e.type ?? 'file') === 'file') p.entry(h, e.body ?? 'pwned', (err) => (err ? rej(err) : res()));
      else p.entry(h, Buffer.alloc(0), (err) => (err ? rej(err) : res()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A GNU-format archive (././@LongLink) crafted by Python's tarfile, not by tar-stream. */
function gnuLongName(name: string): Buffer {
  const py = `import tarfile,io,sys\nb=io.BytesIO()\nt=tarfile.open(fileobj=b,mode='w',format=tarfile.GNU_FORMAT)\ni=tarfile.TarInfo(sys.argv[1]);d=b'pwned';i.size=len(d);t.addfile(i,io.BytesIO(d));t.close();sys.stdout.buffer.write(b.getvalue())`;
  return execFileSync('python3', ['-c', py, name]);
}

type Case = { name: string; layers: (o: string) => Array<E[] | Buffer>; refused?: RegExp; root?: boolean; check?: (root: string, o: string) => Promise<void> };

const isSymlink = async (p: string): Promise<boolean> => (await lstat(p)).isSymbolicLink();

const cases: Case[] = [
  { name: 'traversal by name ../', layers: () => [[{ name: '../escape' }]], refused: /"..\/escape" climbs out/ },
  { name: 'traversal by name a/../../', layers: () => [[{ name: 'a/../../escape' }]], refused: /climbs out/ },
  { name: 'traversal by ./../', layers: () => [[{ name: './../escape' }]], refused: /climbs out/ },
  { name: 'directory named ..', layers: () => [[{ name: '..', type: 'directory' }]], refused: /climbs out/ },
  { name: 'absolute name is taken inside the root', layers: (o) => [[{ name: o + '/abs' }]], check: async (r, o) => assert.ok((await lstat(join(r, o, 'abs'))).isFile()) },
  { name: 'PAX path with ..', layers: () => [[{ name: 'x/'.repeat(60) + '../'.repeat(62) + 'escape' }]], refused: /climbs out/ },
  { name: 'GNU long name with ..', layers: () => [gnuLongName('a/'.repeat(70) + '../'.repeat(72) + 'escape')], refused: /climbs out/ },
  { name: 'relative symlink parent ../outside', layers: () => [[{ name: 'l', type: 'symlink', linkname: '../outside' }, { name: 'l/pwned' }]], check: async (r) => assert.ok((await lstat(join(r, 'outside/pwned'))).isFile()) },
  { name: 'absolute symlink parent', layers: (o) => [[{ name: 'l', type: 'symlink', linkname: o }, { name: 'l/pwned' }]], check: async (r, o) => assert.ok((await lstat(join(r, o, 'pwned'))).isFile()) },
  { name: 'symlink to / then etc/passwd', layers: () => [[{ name: 'rootlink', type: 'symlink', linkname: '/' }, { name: 'rootlink/etc/passwd-pwned' }]], check: async (r) => assert.ok((await lstat(join(r, 'etc/passwd-pwned'))).isFile()) },
  { name: 'nested symlink chain', layers: (o) => [[{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'c/d' }, { name: 'c', type: 'symlink', linkname: '../../..' }, { name: 'd', type: 'symlink', linkname: '../' + o.split('/').pop() }, { name: 'a/pwned' }]] },
  { name: 'symlink .. climbing chain in subdir', layers: () => [[{ name: 'x/y/up', type: 'symlink', linkname: '../../../../../..' }, { name: 'x/y/up/outside/pwned' }]], check: async (r) => assert.ok((await lstat(join(r, 'outside/pwned'))).isFile()) },
  { name: 'symlink loop', layers: () => [[{ name: 'a', type: 'symlink', linkname: 'b' }, { name: 'b', type: 'symlink', linkname: 'a' }, { name: 'a/x' }]], refused: /too many levels of symbolic links/ },
  { name: 'symlink then file through it (same name)', layers: (o) => [[{ name: 'f', type: 'symlink', linkname: o + '/secret' }, { name: 'f', body: 'overwrite' }]], check: async (r) => assert.ok((await lstat(join(r, 'f'))).isFile()) },
  { name: 'symlink in layer 1, file through it in layer 2', layers: (o) => [[{ name: 'etc', type: 'symlink', linkname: o }], [{ name: 'etc/pwned' }, { name: 'etc/secret', body: 'x' }]] },
  { name: 'symlink in layer 1, same-name file in layer 2', layers: () => [[{ name: 'f', type: 'symlink', linkname: '../outside/secret' }], [{ name: 'f', body: 'x' }]] },
  { name: 'directory entry over a symlink to outside (chmod)', layers: (o) => [[{ name: 'd', type: 'symlink', linkname: o + '/dir' }, { name: 'd', type: 'directory', mode: 0o777 }]], check: async (r) => assert.ok((await lstat(join(r, 'd'))).isDirectory()) },
  { name: 'hardlink to ../outside/secret', layers: () => [[{ name: 'h', type: 'link', linkname: '../outside/secret' }]], refused: /hardlink to "..\/outside\/secret", outside the root/ },
  { name: 'hardlink to an absolute host file (/etc/shadow-like)', layers: (o) => [[{ name: 'h', type: 'link', linkname: o + '/secret' }]], refused: /does not exist in the layers/ },
  { name: 'hardlink through a symlinked parent', layers: (o) => [[{ name: 's', type: 'symlink', linkname: o }, { name: 'h', type: 'link', linkname: 's/secret' }]], refused: /does not exist/ },
  { name: 'hardlink with .. after a symlink', layers: () => [[{ name: 's', type: 'symlink', linkname: '/' }, { name: 'h', type: 'link', linkname: 's/../../outside/secret' }]], refused: /outside the root/ },
  { name: 'hardlink to a symlink pointing outside, then write it', layers: (o) => [[{ name: 's', type: 'symlink', linkname: o + '/secret' }, { name: 'h', type: 'link', linkname: 's' }], [{ name: 'h', body: 'overwrite' }]], check: async (r) => assert.ok(await isSymlink(join(r, 's'))) },
  { name: 'hardlink placed through a symlinked parent', layers: (o) => [[{ name: 'f', body: 'in' }, { name: 's', type: 'symlink', linkname: o }, { name: 's/h', type: 'link', linkname: 'f' }]], check: async (r, o) => assert.ok((await lstat(join(r, o, 'h'))).isFile()) },
  { name: 'whiteout named ../', layers: () => [[{ name: '../.wh.secret' }]], refused: /climbs out/ },
  { name: 'whiteout through a symlinked parent', layers: (o) => [[{ name: 's', type: 'symlink', linkname: o }, { name: 's/.wh.secret' }]] },
  { name: 'whiteout through a relative symlink parent', layers: () => [[{ name: 's', type: 'symlink', linkname: '../outside' }], [{ name: 's/.wh.secret' }, { name: 's/.wh.dir' }]] },
  { name: 'opaque marker through a symlinked parent', layers: (o) => [[{ name: 's', type: 'symlink', linkname: o }, { name: 's/.wh..wh..opq' }]] },
  { name: 'whiteout of ..', layers: () => [[{ name: 'x/.wh...' }]], refused: /climbs out|whiteout of no file/ },
  { name: 'absolute symlink target kept verbatim, never followed', layers: (o) => [[{ name: 'abs', type: 'symlink', linkname: o + '/secret' }]], check: async (r, o) => assert.equal(await readlink(join(r, 'abs')), o + '/secret') },
  { name: 'device node is created inside the root only', root: true, layers: () => [[{ name: 'dev/mem2', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o600 }]], check: async (r) => assert.ok((await lstat(join(r, 'dev/mem2'))).isCharacterDevice()) },
  { name: 'device node named ../', layers: () => [[{ name: '../mem', type: 'character-device', devmajor: 1, devminor: 1 }]], refused: /climbs out/ },
  { name: 'device node through a symlinked parent', root: true, layers: (o) => [[{ name: 'd', type: 'symlink', linkname: o }, { name: 'd/null', type: 'character-device', devmajor: 1, devminor: 3 }]], check: async (r, o) => assert.ok((await lstat(join(r, o, 'null'))).isCharacterDevice()) },
  { name: 'file under a regular file', layers: () => [[{ name: 'x' }, { name: 'x/y' }]], refused: /parent that is not a directory/ },
];

test('extraction attacks: refused or contained, nothing outside the root changes', async (t) => {
  assert.ok(cases.length >= 25, 'at least 25 attacks');
  for (const c of cases) {
    await t.test(c.name, async (tt) => {
      if (c.root && !isRoot()) return tt.skip('needs root to create device nodes');
      const sandbox = await tempDir(tt, 'slipway-attack-');
      const outside = join(sandbox, 'outside');
      await mkdir(join(outside, 'dir'), { recursive: true, mode: 0o700 });
      await writeFile(join(outside, 'secret'), 'root:$6$hash:19000::::::\n', { mode: 0o600 });
      const root = join(sandbox, 'root');
      await mkdir(root);
      const before = await snapshotTree(outside, { mtimes: true });
      let error: unknown;
      try {
        for (const layer of c.layers(outside)) await applyLayer((async function* () { yield Buffer.isBuffer(layer) ? layer : await craft(layer); })(), root, { privileged: isRoot() });
      } catch (e) { error = e; }
      if (c.refused) {
        assert.ok(error instanceof UserError, `expected a UserError, got ${String(error)}`);
        assert.match((error as Error).message, c.refused);
      } else if (error) throw error;
      assert.deepEqual(await readdir(sandbox), ['outside', 'root'], 'nothing new next to the root');
      assert.deepEqual(await snapshotTree(outside, { mtimes: true }), before, 'outside unchanged');
      if (!error) await c.check?.(root, outside);
    });
  }
});
