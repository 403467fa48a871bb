// Whole-list checksums: a COPY whose files are all unchanged gets its checksum without the per-file
// index being loaded, and it is the checksum the files' own digests give; any change the kernel
// records in a file's identity, and a list seen only just after its files changed, falls back to
// the per-file way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checksumEntries, ContextHashes, dirTree, planCopy, type FileHashIndex } from '../../src/fs/index.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts loads of the per-file index. */
class Counted extends ContextHashes {
  loads = 0;
  override files(): Promise<FileHashIndex> {
    this.loads++;
    return super.files();
  }
}

function context(): { dir: string; cache: string } {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-sums-'));
  mkdirSync(join(dir, 'ctx', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'ctx', 'a.txt'), 'alpha\n');
  writeFileSync(join(dir, 'ctx', 'sub', 'b.txt'), 'beta\n');
  mkdirSync(join(dir, 'cache'));
  return { dir, cache: join(dir, 'cache') };
}

async function sum(dir: string, hashes?: ContextHashes): Promise<string> {
  const { entries } = await planCopy({ sources: ['.'], dest: '/app/', from: dirTree(join(dir, 'ctx')), mtime: 0 });
  return checksumEntries(entries, { hashes });
}

test('an unchanged list: the same checksum as from the files, and the per-file index is not loaded', async (t) => {
  const { dir, cache } = context();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await sleep(50); // older than the racy window
  const truth = await sum(dir);
  const first = new Counted(cache);
  assert.equal(await sum(dir, first), truth);
  assert.equal(first.loads, 1);
  await first.save();

  const second = new Counted(cache);
  assert.equal(await sum(dir, second), truth);
  assert.equal(second.loads, 0, 'known list: no per-file index');

  // Same size and mtime, new bytes: the ctime changes the identity, so the list is new.
  const file = join(dir, 'ctx', 'sub', 'b.txt');
  const { atime, mtime } = statSync(file);
  writeFileSync(file, 'BETA\n');
  utimesSync(file, atime, mtime);
  const third = new Counted(cache);
  const changed = await sum(dir, third);
  assert.notEqual(changed, truth);
  assert.equal(changed, await sum(dir), 'the checksum the files give');
  assert.equal(third.loads, 1);
});

test('a list whose files changed just before it was saved is not trusted next time; an unreadable sums.json is none', async (t) => {
  const { dir, cache } = context();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The files' newest change is 1.5 s ahead: the first saves come within the racy window however
  // slowly this machine runs (written just before, a busy machine could take the 20 ms and more).
  const ahead = new Date(Date.now() + 1500);
  for (const f of ['a.txt', 'sub/b.txt']) utimesSync(join(dir, 'ctx', f), ahead, ahead);
  const first = new Counted(cache);
  const truth = await sum(dir, first);
  await first.save();
  const second = new Counted(cache);
  assert.equal(await sum(dir, second), truth);
  assert.equal(second.loads, 1, 'racy when saved: checked file by file');
  await sleep(ahead.getTime() + 50 - Date.now());
  await second.save(); // now old enough: this save remembers it
  const third = new Counted(cache);
  assert.equal(await sum(dir, third), truth);
  assert.equal(third.loads, 0);

  writeFileSync(join(cache, 'sums.json'), '{"version":1,"savedAtNs":"1"}\n["not", "a list"]\n');
  const fourth = new Counted(cache);
  assert.equal(await sum(dir, fourth), truth);
  assert.equal(fourth.loads, 1);
  writeFileSync(join(cache, 'sums.json'), 'garbage');
  assert.equal(await sum(dir, new ContextHashes(cache)), truth);
});
