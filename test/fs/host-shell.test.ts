// The resident shells that run mount, umount and getfattr for the snapshotters (src/fs/host-shell.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostExec, hostRun, hostSequence, hostStart } from '../../src/fs/host-shell.ts';

test('a command gets its arguments exactly, its own stdout, stderr and exit code, and no stdin', async () => {
  const odd = ["it's", 'two words', '$HOME', '`id`', 'line\nbreak', '*', ''];
  const r = await hostRun(['sh', '-c', 'printf "%s|" "$@"; echo to-stderr >&2; read x && echo read "$x"; exit 3', 'sh', ...odd]);
  assert.equal(r.stdout, odd.join('|') + '|');
  assert.equal(r.stderr, 'to-stderr\n');
  assert.equal(r.code, 3, 'read got end of input, not the commands that follow');
  const next = await hostRun(['echo', 'after']);
  assert.deepEqual(next, { code: 0, stdout: 'after\n', stderr: '' });
});

test('a sequence runs in order on one shell; hostExec rejects with the command\'s stderr', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-shell-'));
  const file = join(dir, 'log');
  const results = await Promise.all(hostSequence([['sh', '-c', `sleep 0.2; echo one >> ${file}`], ['sh', '-c', `echo two >> ${file}`]]));
  assert.deepEqual(results.map((r) => r.code), [0, 0]);
  assert.equal(readFileSync(file, 'utf8'), 'one\ntwo\n');
  await assert.rejects(hostExec(['sh', '-c', 'echo no such thing >&2; exit 2']), (e: Error & { stderr?: string; code?: number }) => {
    assert.equal(e.stderr, 'no such thing\n');
    assert.equal(e.code, 2);
    return true;
  });
  assert.equal((await hostRun(['/no/such/command'])).code, 127);
});

test('many commands at once all get their own output', async () => {
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => hostRun(['sh', '-c', `echo out-${i}; echo err-${i} >&2`])));
  results.forEach((r, i) => assert.deepEqual(r, { code: 0, stdout: `out-${i}\n`, stderr: `err-${i}\n` }));
});

test('an idle shell keeps no process alive; a killed one is replaced, and its command reports the failure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-shell-'));
  const script = join(dir, 'use.ts');
  const module = join(import.meta.dirname, '../../src/fs/host-shell.ts');
  writeFileSync(script, [
    `import { hostRun } from ${JSON.stringify(module)};`,
    `const r = await hostRun(['echo', 'hi']);`,
    `process.stdout.write(r.stdout);`,
    // The shell's pid, for the parent to check it is gone once this process has exited.
    `process.stdout.write(String((await hostRun(['sh', '-c', 'echo $PPID'])).stdout));`,
  ].join('\n'));
  const started = performance.now();
  const child = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.ok(performance.now() - started < 10_000, 'the process exited without waiting for its shell');
  const [hi, pid] = child.stdout.trim().split('\n');
  assert.equal(hi, 'hi');
  await new Promise((r) => setTimeout(r, 200));
  // Gone, or a zombie of an init that does not reap (as in some containers).
  const state = existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
  assert.ok(state === 'gone' || state === 'Z', `the shell exits with the process that started it (state ${state})`);

  const own = Number((await hostRun(['sh', '-c', 'echo $PPID'])).stdout.trim());
  const dying = hostRun(['sh', '-c', 'sleep 5']);
  await new Promise((r) => setTimeout(r, 100));
  process.kill(own, 'SIGKILL');
  const r = await dying;
  assert.notEqual(r.code, 0);
  assert.deepEqual(await hostRun(['echo', 'again']), { code: 0, stdout: 'again\n', stderr: '' });
});

test('a long command streams its output (any bytes) through FIFOs, on a shell of its own; kill ends it and what it started', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-shell-'));
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const p = await hostStart(['sh', '-c', `printf 'a\\000b\\n'; echo oops >&2; exit 5`], { dir, stdout: (b) => out.push(b), stderr: (b) => err.push(b) });
  assert.ok(p);
  assert.equal(await p.exited, 5);
  assert.deepEqual(Buffer.concat(out), Buffer.from('a\0b\n'));
  assert.equal(Buffer.concat(err).toString(), 'oops\n');

  const dir2 = mkdtempSync(join(tmpdir(), 'slipway-shell-'));
  const marker = join(dir2, 'child-pid');
  const long = await hostStart(['sh', '-c', `sleep 30 & echo $! > ${marker}; echo started; wait`], { dir: dir2, stdout: () => undefined, stderr: () => undefined });
  assert.ok(long);
  // Short commands do not wait behind it.
  const started = performance.now();
  assert.equal((await hostRun(['echo', 'beside'])).stdout, 'beside\n');
  assert.ok(performance.now() - started < 5_000);
  while (!existsSync(marker) || !readFileSync(marker, 'utf8').trim()) await new Promise((r) => setTimeout(r, 20));
  const sleeper = Number(readFileSync(marker, 'utf8'));
  long.kill();
  assert.notEqual(await long.exited, 0);
  await new Promise((r) => setTimeout(r, 100));
  const state = existsSync(`/proc/${sleeper}/stat`) ? readFileSync(`/proc/${sleeper}/stat`, 'utf8').split(') ')[1]?.[0] : 'gone';
  assert.ok(state === 'gone' || state === 'Z', `what it started is killed too (state ${state})`);
});
