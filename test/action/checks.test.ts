// The build checks in the bundled action, run as a runner runs it: `call: check` prints one
// annotation per warning on the Dockerfile's line and fails the step; a build prints the same
// annotations and still succeeds, and `# check=error=true` fails it.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBundle, newJob, runStep } from './helpers.ts';

const dockerfile = 'FROM scratch as base\nENV A b\nCOPY app.txt /\nCMD echo hi\n';
const expected = [
  "::warning file=Dockerfile,line=1,title=FromAsCasing::'as' and 'FROM' keywords' casing do not match",
  '::warning file=Dockerfile,line=2,title=LegacyKeyValueFormat::"ENV key=value" should be used instead of legacy "ENV key value" format',
  '::warning file=Dockerfile,line=4,title=JSONArgsRecommended::JSON arguments recommended for CMD to prevent unintended behavior related to OS signals',
];

before(() => ensureBundle());

test('action call: check → one annotation per warning on its line, the step fails, nothing is built', async () => {
  const job = newJob({ Dockerfile: dockerfile, 'app.txt': 'hi\n' });
  const r = await runStep('main', job, { inputs: { call: 'check', outputs: 'type=oci,dest=out.tar' } });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.deepEqual(r.warnings, expected);
  assert.ok(r.errors.some((e) => e.includes('3 build check warnings in Dockerfile')), r.errors.join('\n'));
  assert.ok(!existsSync(join(job.workspace, 'out.tar')));
});

test('action call: check on a clean Dockerfile passes; a bad call input is one clear error', async () => {
  const clean = await runStep('main', newJob({ Dockerfile: 'FROM scratch\nCMD ["x"]\n' }), { inputs: { call: 'check' } });
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  assert.deepEqual(clean.warnings, []);
  assert.match(clean.stdout, /Check complete, no warnings found\./);
  const bad = await runStep('main', newJob({ Dockerfile: 'FROM scratch\n' }), { inputs: { call: 'lint' } });
  assert.equal(bad.code, 1);
  assert.ok(bad.errors.some((e) => e.includes('input "call" is "lint": expected build or check')), bad.errors.join('\n'));
});

test('a build prints the same annotations and succeeds; # check=error=true fails it before any step', async () => {
  const job = newJob({ Dockerfile: dockerfile, 'app.txt': 'hi\n' });
  const r = await runStep('main', job, { inputs: { outputs: 'type=oci,dest=out.tar', cache: 'false' } });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.deepEqual(r.warnings, expected);
  assert.ok(existsSync(join(job.workspace, 'out.tar')));

  const strict = newJob({ Dockerfile: '# check=error=true;skip=JSONArgsRecommended,FromAsCasing\n' + dockerfile, 'app.txt': 'hi\n' });
  const f = await runStep('main', strict, { inputs: { outputs: 'type=oci,dest=out.tar', cache: 'false' } });
  assert.equal(f.code, 1, f.stdout);
  assert.deepEqual(f.warnings, [expected[1].replace('line=2', 'line=3')]);
  assert.ok(f.errors.some((e) => e.includes('lint violation found for rules: LegacyKeyValueFormat')), f.errors.join('\n'));
  assert.ok(!existsSync(join(strict.workspace, 'out.tar')));
});
