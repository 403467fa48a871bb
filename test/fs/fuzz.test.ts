// Mutated archives (bytes flipped, cut, spliced; plain and gzip) must give a clean UserError or a
// clean read — never a crash, a hang or another kind of exception.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { gzipSync } from 'node:zlib';
import { tarStream, normalizeEntries, type LayerEntry } from '../../src/fs/index.ts';
import { readTar } from '../../src/fs/tar.ts';
import { decompressStream } from '../../src/fs/compress.ts';
import { UserError } from '../../src/errors.ts';

async function seed(): Promise<Buffer> {
  const entries: LayerEntry[] = [
    { path: 'a/b/c.txt', type: 'file', mode: 0o644, uid: 1, gid: 2, mtime: 3, content: { buffer: Buffer.from('hello world\n'.repeat(50)) } },
    { path: 'x'.repeat(150) + '/long', type: 'file', mode: 0o600, uid: 3_000_000, gid: 0, mtime: 3, content: { buffer: Buffer.from('y') }, xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0xff]) } },
    { path: 'a/link', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 3, linkTarget: '../' + 'z'.repeat(120) },
    { path: 'a/hard', type: 'hardlink', mode: 0, uid: 0, gid: 0, mtime: 3, linkTarget: 'a/b/c.txt' },
    { path: 'dev/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 3, devMajor: 1, devMinor: 3 },
  ];
  const parts: Buffer[] = [];
  for await (const b of tarStream(normalizeEntries(entries))) parts.push(b);
  return Buffer.concat(parts);
}

async function readAll(data: Buffer, compressed: boolean): Promise<number> {
  let n = 0;
  const src = (async function* () { for (let i = 0; i < data.length; i += 700) yield data.subarray(i, i + 700); })();
  for await (const e of readTar(compressed ? decompressStream(src) : src)) {
    if (n % 2 === 0) for await (const _ of e.body()) { /* read */ }
    n++;
  }
  return n;
}

const mutation = (len: number) => fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(len - 1), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat(len - 1), value: fc.constant(0) }),
  fc.record({ kind: fc.constant('digits' as const), at: fc.nat(len - 1), value: fc.integer({ min: 0x30, max: 0x39 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(len - 1), value: fc.integer({ min: 1, max: 1024 }) }),
);

function apply(data: Buffer, ms: Array<{ kind: string; at: number; value: number }>): Buffer {
  let b = Buffer.from(data);
  for (const m of ms) {
    const at = m.at % Math.max(1, b.length);
    if (m.kind === 'flip' || m.kind === 'digits') b[at] = m.value;
    else if (m.kind === 'cut') b = b.subarray(0, at);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(Math.max(0, at - m.value), at), b.subarray(at)]);
  }
  return b;
}

test('fuzz: mutated tar and tar.gz archives give clean errors only', async () => {
  const plain = await seed();
  assert.equal(await readAll(plain, false), 9, 'the unmutated seed reads (5 entries + 4 parent dirs)');
  const gz = gzipSync(plain);
  const start = Date.now();
  let errors = 0;
  let runs = 0;
  for (const [data, compressed] of [[plain, false], [gz, true]] as const) {
    await fc.assert(
      fc.asyncProperty(fc.array(mutation(data.length), { minLength: 1, maxLength: 4 }), async (ms) => {
        runs++;
        try {
          await readAll(apply(data, ms), compressed);
        } catch (e) {
          errors++;
          if (!(e instanceof UserError)) throw new Error(`not a clean error: ${String((e as Error)?.stack ?? e)}`, { cause: e });
        }
      }),
      { numRuns: 5000, interruptAfterTimeLimit: 7000, seed: 4242 },
    );
  }
  assert.ok(errors > 50, `mutations were detected (${errors} of ${runs})`);
  assert.ok(Date.now() - start < 20_000);
});
