// The `# check=` directive and comments, as BuildKit's linter reads them: skip lists, skip=all,
// experimental rules, error=true (one failure naming the rules), a check comment above a stage or
// an instruction, and a bad option as one clear error.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCheckReport, formatShort, runChecks } from '../../src/checks/index.ts';

const amd64 = { os: 'linux', architecture: 'amd64' };
const check = (dockerfile: string, buildArgs: Record<string, string> = {}) => runChecks({ dockerfile, path: 'Dockerfile', targetPlatform: amd64, buildPlatform: amd64, allStages: true, defaultPath: '/usr/bin', buildArgs });
const body = 'FROM scratch as base\nMAINTAINER me\nCMD echo hi\n';

test('without a directive every rule runs; experimental ones do not', async () => {
  const r = await check('# base the stage\n' + body.replace('base\n', 'base\n'));
  assert.deepEqual(r.warnings.map((w) => w.rule), ['FromAsCasing', 'MaintainerDeprecated', 'JSONArgsRecommended']);
  assert.equal(r.violation, undefined);
});

test('skip=A,B drops those rules; skip=all drops every rule; experimental=all adds the experimental ones', async () => {
  assert.deepEqual((await check('# check=skip=FromAsCasing, MaintainerDeprecated\n' + body)).warnings.map(formatShort),
    ['JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals (line 4)']);
  assert.deepEqual((await check('# check=skip=all\n' + body)).warnings, []);
  const exp = await check('# check=skip=all;experimental=all\n# the base\nFROM scratch AS base\n');
  assert.deepEqual(exp.warnings.map((w) => w.rule), ['InvalidDefinitionDescription']);
});

test('error=true: the warnings are still listed, and the violation names the rules', async () => {
  const r = await check('# check=error=true;skip=JSONArgsRecommended\n' + body);
  assert.deepEqual(r.warnings.map((w) => w.rule), ['FromAsCasing', 'MaintainerDeprecated']);
  assert.equal(r.violation?.message, 'lint violation found for rules: FromAsCasing, MaintainerDeprecated');
  const clean = await check('# check=error=true\nFROM scratch\n');
  assert.equal(clean.violation, undefined);
});

test('a check comment right above a stage or an instruction skips rules there only', async () => {
  const r = await check('FROM scratch\n# check=skip=LegacyKeyValueFormat\nENV A b\nENV C d\n');
  assert.deepEqual(r.warnings.map(formatShort), ['LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format (line 4)']);
  const stage = await check('# check=skip=UndefinedArgInFrom\nFROM scratch\nFROM ${NOPE:-scratch}\n');
  assert.deepEqual(stage.warnings, []);
});

test('--build-arg BUILDKIT_DOCKERFILE_CHECK replaces the # check= directive (BuildKit\'s lint test cases)', async () => {
  const df = '#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n';
  const r = await check(df, { BUILDKIT_DOCKERFILE_CHECK: 'skip=ConsistentInstructionCasing;error=true' });
  assert.deepEqual(r.warnings.map(formatShort), ["FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 2)"]);
  assert.equal(r.violation?.message, 'lint violation found for rules: FromAsCasing');
  const quiet = await check('#check=error=true\nFROM scratch as base\ncopy Dockerfile .\n', { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' });
  assert.deepEqual([quiet.warnings, quiet.violation], [[], undefined]);
  const bad = await check('FROM scratch\n', { BUILDKIT_DOCKERFILE_CHECK: 'loud=yes' });
  assert.match(String((bad.error as Error).message), /^failed to parse build-arg:BUILDKIT_DOCKERFILE_CHECK: invalid check option "loud"$/);
});

test('a bad check option is one clear error, reported as --check reports errors', async () => {
  const r = await check('# check=skip=A;loud=yes\nFROM scratch\n');
  assert.match(String((r.error as Error).message), /failed to parse check options: invalid check option "loud"/);
  const printed = formatCheckReport(r);
  assert.equal(printed.status, 1);
  const bool = await check('# check=error=maybe\nFROM scratch\n');
  assert.match(String((bool.error as Error).message), /failed to parse check option "error=maybe"/);
});

test('the --check report is printed as buildx prints it', async () => {
  const r = await check('FROM scratch\nENV A b\n');
  assert.equal(formatCheckReport(r).text, [
    'Check complete, 1 warning has been found!',
    '',
    'WARNING: LegacyKeyValueFormat - https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/',
    '"ENV key=value" should be used instead of legacy "ENV key value" format',
    'Dockerfile:2',
    '--------------------',
    '   1 |     FROM scratch',
    '   2 | >>> ENV A b',
    '   3 |     ',
    '--------------------',
    '',
  ].join('\n'));
  assert.deepEqual(formatCheckReport(await check('FROM scratch\n')), { text: 'Check complete, no warnings found.\n', status: 0 });
});
