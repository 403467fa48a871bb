// The structure rules of src/: no import cycle, and the door rule (a folder's index.ts is its only
// entry) catches what it should. The lint run enforces the rule on the tree; this checks the rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import doors from '../scripts/lint/doors.js';

const root = resolve(import.meta.dirname, '..');
const src = join(root, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Relative imports and re-exports of a file, type-only ones included (they tie modules too). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/^(?:import|export)\s[^'"]*?from\s+'(\.[^']+)'/gms)].map((m) => m[1]);
  return found.map((s) => resolve(dirname(file), s));
}

test('src/ has no import cycle', () => {
  const graph = new Map(sources(src).map((f) => [f, importsOf(f)]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(root, p)).join(' → '));
      return;
    }
    state.set(f, 'open');
    for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
  assert.ok(graph.size > 50, 'the scan found the sources');
});

test('the door rule: another folder only through its index.ts; own folder and parents freely', () => {
  const linter = new Linter({ cwd: root });
  const config = [{
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { slipway: { rules: { doors } } },
    rules: { 'slipway/doors': ['error', { root: 'src' }] },
  }];
  const errors = (file: string, code: string) => linter.verify(code, config as never, join(root, file)).map((m) => m.message);
  assert.match(errors('src/cli/x.ts', "import { BuildSession } from '../engine/session.ts';").join(), /reaches into engine\/: import its index\.ts/);
  assert.match(errors('src/engine/build.ts', "import { runInstruction } from './steps/run.ts';").join(), /reaches into engine\/steps\//);
  assert.match(errors('src/engine/x.ts', "export { x } from '../fs/tar.ts';").join(), /reaches into fs\//);
  assert.deepEqual(errors('src/cli/x.ts', "import { build } from '../engine/index.ts';"), []);
  assert.deepEqual(errors('src/engine/steps/run.ts', "import type { BuildSession } from '../session.ts';"), []);
  assert.deepEqual(errors('src/engine/build.ts', "import { StageScheduler } from './scheduler.ts';"), []);
  assert.deepEqual(errors('src/engine/build.ts', "import { UserError } from '../errors.ts';"), []);
});
