// The file hash index: a file it knows, unchanged, costs no read; any change the kernel records
// (content rewritten in place with its mtime put back, a rename over it) is a miss; racy entries
// (changed right before the index was saved) are never trusted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileHashIndex } from '../../src/fs/hash-index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (p: string) => async () => createHash('sha256').update(readFileSync(p)).digest('hex');

test('known and unchanged: a hit; rewritten in place with the same size and mtime, or replaced: a miss', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-hashes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.txt');
  const other = join(dir, 'b.txt');
  writeFileSync(file, 'one');
  writeFileSync(other, 'two');
  await sleep(50); // older than the racy window
  const index = join(dir, 'cache', 'hashes.json');
  const first = await FileHashIndex.load(index);
  assert.equal(first.lookup(file), undefined);
  assert.deepEqual(await first.remember(file, sha(file)), { digest: await sha(file)(), kept: true });
  await first.remember(other, sha(other));
  await first.save();

  const second = await FileHashIndex.load(index);
  assert.equal(second.lookup(file), await sha(file)(), 'unchanged: known without a read');
  const { atime, mtime } = statSync(file);
  writeFileSync(file, 'ONE');
  utimesSync(file, atime, mtime);
  assert.equal(second.lookup(file), undefined, 'same size and mtime, new content: the ctime tells');
  writeFileSync(join(dir, 'c.tmp'), 'twO');
  renameSync(join(dir, 'c.tmp'), other);
  assert.equal(second.lookup(other), undefined, 'a new inode under the old name');
});

test('racy: a file changed just before the index was saved is hashed again next time', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-hashes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.txt');
  writeFileSync(file, 'fresh');
  // Its newest change 1.5 s ahead: the save comes within the racy window however busy the machine.
  const ahead = new Date(Date.now() + 1500);
  utimesSync(file, ahead, ahead);
  const index = join(dir, 'hashes.json');
  const first = await FileHashIndex.load(index);
  await first.remember(file, sha(file));
  await first.save();
  assert.equal((await FileHashIndex.load(index)).lookup(file), undefined);
  writeFileSync(index, 'not json');
  assert.equal((await FileHashIndex.load(index)).lookup(file), undefined, 'an unreadable index is an empty one');
});

test('a racy entry stays untrusted after a later save carries the index over (it is dropped when read)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-hashes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.txt');
  const other = join(dir, 'b.txt');
  writeFileSync(file, 'fresh');
  // Changed (as far as the index can tell) 1 s ahead: racy for the first save however busy the
  // machine, and long past by the second.
  const ahead = new Date(Date.now() + 1000);
  utimesSync(file, ahead, ahead);
  const index = join(dir, 'hashes.json');
  const first = await FileHashIndex.load(index);
  await first.remember(file, sha(file));
  await first.save();
  await sleep(ahead.getTime() + 50 - Date.now());
  writeFileSync(other, 'other');
  await sleep(50);
  const second = await FileHashIndex.load(index);
  await second.remember(other, sha(other)); // a later build learns something and saves again
  await second.save();
  const third = await FileHashIndex.load(index);
  assert.equal(third.lookup(file), undefined, 'the later save did not make the racy entry trusted');
  assert.equal(third.lookup(other), await sha(other)());
});

test('remember reports a file that changed while it was hashed, and does not keep it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-hashes-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'a.txt');
  writeFileSync(file, 'before');
  const index = await FileHashIndex.load(join(dir, 'hashes.json'));
  const got = await index.remember(file, async () => { const d = await sha(file)(); writeFileSync(file, 'after, longer'); return d; });
  assert.equal(got.kept, false);
  assert.equal(index.lookup(file), undefined);
});
