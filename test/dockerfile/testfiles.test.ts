// Data-driven frontend cases, as BuildKit's frontend/dockerfile/parser/testfiles: every folder in
// testfiles/ is one case (see testfiles/README.md for the files a case holds). Adding a case needs
// no code here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDockerfile, type Node } from '../../src/dockerfile/parser.ts';
import { parseDefinition } from '../../src/dockerfile/instructions.ts';
import { DockerfileError } from '../../src/dockerfile/errors.ts';
import { goQuote } from '../../src/dockerfile/shell-lex.ts';

const DIR = join(import.meta.dirname, 'testfiles');

/** BuildKit's Node.Dump for one instruction: `keyword ["--flag" …] "arg" …`, ONBUILD nesting its trigger. */
function sexpr(n: Node): string {
  let s = n.keyword;
  if (n.flags.length > 0) s += ` [${n.flags.map(goQuote).join(' ')}]`;
  if (n.sub) return `${s} (${sexpr(n.sub)})`;
  const words = n.pairs ? n.pairs.flatMap((p) => [p.key, p.value, p.noDelim ? '' : '=']) : n.args;
  for (const w of words) s += ` ${goQuote(w)}`;
  return s;
}

/** The `result` text: BuildKit's dump, one line per instruction, then slipway's indented extras. */
function dump(nodes: Node[]): string {
  const lines: string[] = [];
  for (const n of nodes) {
    lines.push(`(${sexpr(n)})`);
    const t = n.sub ?? n;
    if (t.json) lines.push('  json');
    for (const h of t.heredocs) {
      lines.push(`  heredoc ${goQuote(h.name)} fd=${h.fileDescriptor} expand=${h.expand} chomp=${h.chomp} ${goQuote(h.content)}`);
    }
  }
  return lines.join('\n') + '\n';
}

const read = (dir: string, name: string): string | undefined => {
  const p = join(dir, name);
  return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
};

const cases = readdirSync(DIR, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort();

test('testfiles: the folder holds cases', () => {
  assert.ok(cases.length >= 20, `only ${cases.length} cases`);
});

for (const name of cases) {
  const dir = join(DIR, name);
  const todo = read(dir, 'todo.txt')?.split('\n')[0]; // first line: the summary
  test(`testfiles/${name}`, { todo }, () => {
    const text = read(dir, 'Dockerfile');
    assert.ok(text !== undefined, 'a case needs a Dockerfile');
    const result = read(dir, 'result');
    const error = read(dir, 'error.txt')?.replace(/\n$/, '');
    const warnings = read(dir, 'warnings.txt');
    assert.ok(result !== undefined || error !== undefined, 'a case needs a result or an error.txt');
    if (result !== undefined) {
      const ast = parseDockerfile(text, 'Dockerfile');
      assert.equal(dump(ast.nodes), result);
      assert.equal(ast.warnings.map((w) => w + '\n').join(''), warnings ?? '');
    }
    if (error === undefined) {
      parseDefinition(text, 'Dockerfile');
      return;
    }
    assert.throws(() => parseDefinition(text, 'Dockerfile'), (e: unknown) => {
      assert.ok(e instanceof DockerfileError, `not a DockerfileError: ${String(e)}`);
      assert.ok(e.message.includes(error), `error ${JSON.stringify(e.message)} does not contain ${JSON.stringify(error)}`);
      return true;
    });
  });
}
