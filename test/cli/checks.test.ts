// `slipway build --check` / `--call check` as users run them, and the checks in a CLI build: the
// report and exit status as buildx gives them, bases resolved from a real registry (their Env is
// defined, so only truly undefined variables warn), `error=true` failing the build.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryMissing, startRegistry, type TestRegistry } from '../harness/registry.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { runCliProcess } from '../harness/cli.ts';


async function slipway(args: string[], cwd: string) {
  return runCliProcess(args, { cwd });
}

function context(dockerfile: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-checks-'));
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  writeFileSync(join(dir, 'app.txt'), 'hi\n');
  return dir;
}

test('slipway build --check: the report on stdout, exit 1 when a check fires, 0 when none; nothing is built', async () => {
  const dir = context('FROM scratch\nENV A b\nCOPY app.txt /\n');
  const r = await slipway(['build', '--check', '-o', 'type=oci,dest=out.tar', '.'], dir);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /^Check complete, 1 warning has been found!\n\nWARNING: LegacyKeyValueFormat - https:\/\/docs\.docker\.com\/go\/dockerfile\/rule\/legacy-key-value-format\/\n"ENV key=value" should be used instead of legacy "ENV key value" format\nDockerfile:2\n/);
  assert.ok(!existsSync(join(dir, 'out.tar')));
  const call = await slipway(['build', '--call', 'check', '.'], dir);
  assert.equal(call.code, 1);
  assert.equal(call.stdout, r.stdout);
  const clean = await slipway(['build', '--check', '.'], context('FROM scratch\nCOPY app.txt /\n'));
  assert.deepEqual([clean.code, clean.stdout], [0, 'Check complete, no warnings found.\n']);
});

test('slipway build: the warnings after the build as buildx lists them; error=true fails before any step', async () => {
  const dir = context('FROM scratch\nENV A b\nCOPY app.txt /\n');
  const r = await slipway(['build', '--cache-dir', join(dir, '.cache'), '-o', 'type=oci,dest=out.tar', '.'], dir);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stderr.includes('\n 1 warning found:\n - LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line 2)\nMore info: https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/\n'), r.stderr);
  assert.ok(existsSync(join(dir, 'out.tar')));
  const strict = context('# check=error=true\nFROM scratch\nENV A b\nCOPY app.txt /\n');
  const f = await slipway(['build', '--cache-dir', join(strict, '.cache'), '-o', 'type=oci,dest=out.tar', '.'], strict);
  assert.equal(f.code, 1);
  assert.match(f.stderr, /lint violation found for rules: LegacyKeyValueFormat/);
  assert.doesNotMatch(f.stderr, /COPY app\.txt/, 'no step ran');
  assert.ok(!existsSync(join(strict, 'out.tar')));
});

const missing = registryMissing() ?? fixturesMissing();
let reg: TestRegistry;
let busybox: string;
before(async () => {
  if (missing) return;
  reg = await startRegistry();
  busybox = (await pushFixture(reg, 'multiarch', 'library/busybox:1')).ref;
});
after(async () => { await reg?.stop(); });

test('--check resolves the base from the registry: its Env is defined, an unknown variable is not', { skip: missing }, async () => {
  const dir = context(`FROM ${busybox}\nENV P=$PATH:$NOPE\nFROM scratch AS other\nCOPY $ALSO /x\n`);
  const r = await slipway(['build', '--check', '.'], dir);
  assert.equal(r.code, 1, r.stderr);
  const found = [...r.stdout.matchAll(/^WARNING: (\w+) .*\n(.*)\n/gm)].map((m) => `${m[1]}: ${m[2]}`);
  // Every stage without --target (BuildKit's lint), in line order.
  assert.deepEqual(found, ["UndefinedVar: Usage of undefined variable '$NOPE'", "UndefinedVar: Usage of undefined variable '$ALSO'"]);
  const target = await slipway(['build', '--check', '--target', 'other', '.'], dir);
  assert.deepEqual([...target.stdout.matchAll(/^WARNING: (\w+)/gm)].map((m) => m[1]), ['UndefinedVar']);
  assert.match(target.stdout, /\$ALSO/);
});
