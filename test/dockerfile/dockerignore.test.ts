// .dockerignore table from docs.docker.com/build/concepts/context (".dockerignore files":
// syntax, examples, exceptions) and moby/patternmatcher semantics; the context walker on a real
// temporary directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDockerignore, PatternMatcher, readIgnorePatterns, walkContext, loadMatcher } from '../../src/dockerfile/dockerignore.ts';
import { UserError } from '../../src/errors.ts';

const matcher = (text: string): PatternMatcher => new PatternMatcher(parseDockerignore(text));

test('.dockerignore syntax: comments, blank lines, trimming, leading / and ./ removed, paths cleaned', () => {
  assert.deepEqual(parseDockerignore('# comment\n\n  *.md  \n/foo/bar\n./baz\n! keep\na//b/../c\n #notcomment\n\uFEFF\n/\n'), ['*.md', 'foo/bar', 'baz', '!keep', 'a/c', '#notcomment', '/']);
  assert.deepEqual(parseDockerignore('\uFEFF# bom comment\r\nx\r\n'), ['x']);
});

const table: [section: string, patterns: string, path: string, excluded: boolean][] = [
  ['docs example: */temp* excludes /somedir/temporary.txt', '*/temp*', 'somedir/temporary.txt', true],
  ['docs example: */temp* excludes the directory /somedir/temp', '*/temp*', 'somedir/temp', true],
  ['docs example: */temp* excludes below /somedir/temp (parent match)', '*/temp*', 'somedir/temp/x/y', true],
  ['docs example: */temp* does not match at the root', '*/temp*', 'temporary.txt', false],
  ['docs example: */*/temp* excludes /somedir/subdir/temporary.txt', '*/*/temp*', 'somedir/subdir/temporary.txt', true],
  ['docs example: */*/temp* not one level down', '*/*/temp*', 'somedir/temporary.txt', false],
  ['docs example: temp? excludes /tempa', 'temp?', 'tempa', true],
  ['docs example: temp? not /tempab', 'temp?', 'tempab', false],
  ['docs example: temp? ? does not match /', 'temp?', 'temp/', false],
  ['docs: **/*.go excludes .go files anywhere', '**/*.go', 'a/b/c/main.go', true],
  ['docs: **/*.go at the root too', '**/*.go', 'main.go', true],
  ['docs: *.md + !README.md keeps README.md', '*.md\n!README.md', 'README.md', false],
  ['docs: *.md + !README.md excludes other .md', '*.md\n!README.md', 'CHANGELOG.md', true],
  ['docs: *.md, !README*.md, README-secret.md excludes README-secret.md', '*.md\n!README*.md\nREADME-secret.md', 'README-secret.md', true],
  ['docs: *.md, !README*.md, README-secret.md keeps README-2.md', '*.md\n!README*.md\nREADME-secret.md', 'README-2.md', false],
  ['docs: the last matching line wins (exception then re-exclude)', '!README.md\n*.md', 'README.md', true],
  ['docs: leading / is relative to the context root', '/foo', 'foo', true],
  ['docs: ./ prefix is removed', './foo', 'foo/bar', true],
  ['patternmatcher: * does not cross /', '*', 'a/b', true],
  ['patternmatcher: *.txt only at the root', '*.txt', 'dir/a.txt', false],
  ['patternmatcher: ** alone matches everything', '**', 'a/b/c', true],
  ['patternmatcher: dir/** matches below dir', 'dir/**', 'dir/a/b', true],
  ['patternmatcher: dir/** does not match dir2', 'dir/**', 'dir2/a', false],
  ['patternmatcher: a/**/b matches a/b', 'a/**/b', 'a/b', true],
  ['patternmatcher: a/**/b matches a/x/y/b', 'a/**/b', 'a/x/y/b', true],
  ['patternmatcher: [a-c] class', 'file[a-c].txt', 'fileb.txt', true],
  ['patternmatcher: [a-c] class miss', 'file[a-c].txt', 'filed.txt', false],
  ['patternmatcher: [^a-c] negated class', 'file[^a-c].txt', 'filed.txt', true],
  ['patternmatcher: \\ escapes a special char', 'a\\*b', 'a*b', true],
  ['patternmatcher: \\ escaped * is literal', 'a\\*b', 'axb', false],
  ['patternmatcher: regex chars are literal', 'a.(b)+$', 'a.(b)+$', true],
  ['patternmatcher: . is not a wildcard', 'a.b', 'axb', false],
  ['patternmatcher: directory pattern excludes its files', 'node_modules', 'node_modules/x/index.js', true],
  ['patternmatcher: exception re-includes a file inside an excluded dir', 'dir\n!dir/keep', 'dir/keep', false],
  ['patternmatcher: exception does not re-include siblings', 'dir\n!dir/keep', 'dir/other', true],
  ['patternmatcher: paths are cleaned before matching', 'a/b', './a/../a/b', true],
];

test('.dockerignore matching table (docs + moby/patternmatcher)', async (t) => {
  for (const [section, patterns, path, excluded] of table) {
    await t.test(`${section}`, () => assert.equal(matcher(patterns).matches(path), excluded));
  }
});

test('matchWithParents agrees with matches() on the table (the walker fast path)', () => {
  for (const [, patterns, path] of table) {
    const m = matcher(patterns);
    const parts = path.replace(/\/$/, '').split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) continue;
    let info: boolean[] | undefined;
    let res = false;
    for (let i = 1; i <= parts.length; i++) {
      const r = m.matchWithParents(parts.slice(0, i).join('/'), info);
      info = r.perPattern;
      res = r.excluded;
    }
    assert.equal(res, m.matches(path), `${patterns} / ${path}`);
  }
});

test('bad patterns are UserErrors', () => {
  assert.throws(() => matcher('!'), (e: unknown) => e instanceof UserError && /illegal exclusion pattern/.test(e.message));
  assert.throws(() => matcher('[a-'), (e: unknown) => e instanceof UserError && /syntax error in pattern/.test(e.message));
  assert.throws(() => matcher('abc\\'), UserError);
});

test('exceptionCouldMatchBelow: prune only when no exception can match below', () => {
  const m = matcher('node_modules\n!node_modules/keep/**\n!**/*.keep\n');
  assert.equal(m.exceptionCouldMatchBelow('node_modules'), true);
  const n = matcher('node_modules\nbuild\n!build/out.txt\n');
  assert.equal(n.exceptionCouldMatchBelow('node_modules'), false);
  assert.equal(n.exceptionCouldMatchBelow('build'), true);
  assert.equal(matcher('*\n!src/*.ts').exceptionCouldMatchBelow('docs'), false);
  assert.equal(matcher('*\n!*/keep').exceptionCouldMatchBelow('docs'), true);
});

function makeTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'slipway-ctx-'));
  const files = ['Dockerfile', 'README.md', 'CHANGELOG.md', 'src/a.ts', 'src/b.go', 'src/deep/c.go', 'node_modules/x/index.js',
    'node_modules/y/index.js', 'build/out.txt', 'build/tmp.o', 'a.txt', 'a/b.txt'];
  for (const f of files) { mkdirSync(join(root, f, '..'), { recursive: true }); writeFileSync(join(root, f), f); }
  mkdirSync(join(root, 'emptydir'));
  symlinkSync('src/a.ts', join(root, 'link'));
  return root;
}

test('walkContext: sorted Walk order, lstat info, exclusions, exceptions, pruning', async () => {
  const root = makeTree();
  try {
    const all = await walkContext(root);
    assert.deepEqual(all.map((e) => e.path), ['CHANGELOG.md', 'Dockerfile', 'README.md', 'a', 'a/b.txt', 'a.txt', 'build', 'build/out.txt', 'build/tmp.o',
      'emptydir', 'link', 'node_modules', 'node_modules/x', 'node_modules/x/index.js', 'node_modules/y', 'node_modules/y/index.js',
      'src', 'src/a.ts', 'src/b.go', 'src/deep', 'src/deep/c.go']);
    assert.ok(all.find((e) => e.path === 'link')!.stat.isSymbolicLink());
    assert.ok(all.find((e) => e.path === 'src')!.stat.isDirectory());
    const read: string[] = [];
    const m = matcher('node_modules\n*.md\n!README.md\nbuild\n!build/out.txt\n**/*.go\n');
    const got = await walkContext(root, m, { onReadDir: (d) => read.push(d) });
    assert.deepEqual(got.map((e) => e.path), ['Dockerfile', 'README.md', 'a', 'a/b.txt', 'a.txt', 'build', 'build/out.txt', 'emptydir', 'link', 'src', 'src/a.ts', 'src/deep']);
    assert.ok(!read.includes('node_modules'), 'never reads an excluded directory without exceptions below');
    assert.ok(read.includes('build'), 'reads an excluded directory an exception may re-include');
    const none = await walkContext(root, matcher('build\n!nothing/here\n'), { onReadDir: (d) => read.push('2:' + d) });
    assert.ok(!none.some((e) => e.path.startsWith('build')));
    assert.ok(!read.includes('2:build'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('<Dockerfile>.dockerignore next to the Dockerfile takes precedence over .dockerignore', async () => {
  const root = makeTree();
  try {
    writeFileSync(join(root, '.dockerignore'), 'src\n');
    assert.deepEqual((await readIgnorePatterns(root, 'Dockerfile')).patterns, ['src']);
    mkdirSync(join(root, 'docker'));
    writeFileSync(join(root, 'docker', 'app.Dockerfile.dockerignore'), '# specific\n*.md\n');
    const r = await readIgnorePatterns(root, 'docker/app.Dockerfile');
    assert.deepEqual(r, { patterns: ['*.md'], file: join(root, 'docker', 'app.Dockerfile.dockerignore') });
    assert.deepEqual((await readIgnorePatterns(root, join(root, 'docker/app.Dockerfile'))).patterns, ['*.md']);
    const m = await loadMatcher(root, 'docker/app.Dockerfile');
    assert.equal(m.matches('README.md'), true);
    rmSync(join(root, '.dockerignore'));
    assert.deepEqual(await readIgnorePatterns(root, 'Dockerfile'), { patterns: [] });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('walkContext: a missing context directory is a UserError', async () => {
  await assert.rejects(walkContext(join(tmpdir(), 'does-not-exist-slipway-ctx')), (e: unknown) => e instanceof UserError && /cannot read build context/.test(e.message));
});
