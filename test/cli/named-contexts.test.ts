// `slipway build --build-context NAME=VALUE` as its own process: the flag reaches the build, a bad
// value is one error with exit status 1 before any step, and --help lists the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCliProcess } from '../harness/cli.ts';
import { fixturesMissing } from '../harness/fixtures.ts';
import { makeContext, unpackOci } from '../engine/helpers.ts';

test('--build-context NAME=DIR (repeatable; relative to the working directory) feeds FROM and COPY --from', { skip: fixturesMissing() }, async () => {
  const top = makeContext({
    'app/Dockerfile': 'FROM base\nCOPY --from=extra note.txt /note.txt\n',
    'base/etc/base-release': 'base 1\n',
    'more/note.txt': 'note\n',
  });
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-cli-named-')), 'img.tar');
  const r = await runCliProcess(['build', '--cache-dir', join(top, '.cache'), '--build-context', 'base=base', '--build-context', 'extra=./more', '-o', `type=oci,dest=${out}`, 'app'], { cwd: top });
  assert.equal(r.code, 0, r.stderr);
  const rootfs = join(await unpackOci(out), 'rootfs');
  assert.equal(readFileSync(join(rootfs, 'etc/base-release'), 'utf8'), 'base 1\n');
  assert.equal(readFileSync(join(rootfs, 'note.txt'), 'utf8'), 'note\n');
});

test('a bad --build-context is one error, exit status 1, before any step runs', async () => {
  const ctx = makeContext({ Dockerfile: 'FROM scratch\nCOPY --from=x a /\n', 'layout/index.json': '{"manifests":[]}' });
  const cases: Array<[string, RegExp]> = [
    ['x=gopher://h/x', /--build-context x=gopher:\/\/h\/x: unknown scheme "gopher:\/\/"/],
    ['x=./no-such-dir', /directory .*no-such-dir does not exist/],
    ['x=oci-layout://layout:v9', /the OCI layout .*layout has no image tagged "v9"/],
  ];
  for (const [flag, re] of cases) {
    const r = await runCliProcess(['build', '--cache-dir', join(ctx, '.cache'), '--build-context', flag, '.'], { cwd: ctx });
    assert.equal(r.code, 1, flag);
    assert.match(r.stderr, re, flag);
    assert.doesNotMatch(r.stderr, /\[1\/2\]|COPY --from/, 'no step started');
  }
});

test('--help lists --build-context and its kinds', async () => {
  const r = await runCliProcess(['build', '--help']);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--build-context N=V/);
  assert.match(r.stdout, /docker-image:\/\/REF, oci-layout:\/\/DIR\[:TAG\|@DIGEST\]/);
});
