// One case per build-check rule, as data: test/checks/rules/<Rule>/Dockerfile triggers the rule
// (`expected` holds every warning it must give, in BuildKit's short form), clean.Dockerfile must give
// none. A `.dockerignore` is the context's; `bases.json` gives the base images' config platform and
// environment (what the registry would resolve) for the rules that read them.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatShort, RULES, runChecks, type ResolveBase } from '../../src/checks/index.ts';
import { parseDockerignore, PatternMatcher } from '../../src/dockerfile/index.ts';

const dir = join(import.meta.dirname, 'rules');
const amd64 = { os: 'linux', architecture: 'amd64' };

async function check(caseDir: string, file: string): Promise<string[]> {
  const ignorePath = join(caseDir, '.dockerignore');
  const basesPath = join(caseDir, 'bases.json');
  const bases = existsSync(basesPath) ? JSON.parse(readFileSync(basesPath, 'utf8')) as Record<string, { os: string; architecture: string; env?: string[] }> : {};
  const resolve: ResolveBase = async (ref) => {
    const b = bases[ref];
    if (!b) throw new Error(`no base ${ref}`);
    return { env: b.env, platform: { os: b.os, architecture: b.architecture } };
  };
  const report = await runChecks({
    dockerfile: readFileSync(join(caseDir, file), 'utf8'), path: 'Dockerfile', targetPlatform: amd64, buildPlatform: amd64, allStages: true, resolve, defaultPath: '/usr/bin',
    ...(existsSync(ignorePath) ? { ignore: new PatternMatcher(parseDockerignore(readFileSync(ignorePath, 'utf8'))) } : {}),
  });
  return report.warnings.map(formatShort);
}

const cases = readdirSync(dir).sort();

test('every rule of the table has a case, and every case names a rule', () => {
  assert.deepEqual(cases, Object.keys(RULES).sort());
  assert.equal(cases.length, 22);
});

for (const name of cases) {
  test(`${name}: fires with BuildKit's message and line`, async () => {
    const expected = readFileSync(join(dir, name, 'expected'), 'utf8').trimEnd().split('\n');
    assert.deepEqual(await check(join(dir, name), 'Dockerfile'), expected);
  });
  test(`${name}: a Dockerfile that avoids it gives no warning`, async () => {
    assert.deepEqual(await check(join(dir, name), 'clean.Dockerfile'), []);
  });
}
