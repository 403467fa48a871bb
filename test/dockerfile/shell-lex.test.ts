// Word expansion table, from docs.docker.com/reference/dockerfile "Environment replacement" and
// BuildKit's shell lexer behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShellLex } from '../../src/dockerfile/shell-lex.ts';
import { UserError } from '../../src/errors.ts';

const env = new Map([
  ['str', 'foobarbaz'], ['string', 'foobarbaz'], ['FOO', '/bar'], ['EMPTY', ''], ['SPACED', 'a  b'],
  ['file', '/home/tux/book/book.tar.bz2'], ['foo', 'x'],
]);
const lex = new ShellLex();
const ex = (w: string, l = lex): string => l.processWord(w, env);

const table: [section: string, word: string, want: string][] = [
  ['Environment replacement: $variable_name', '$FOO', '/bar'],
  ['Environment replacement: ${variable_name}', '${FOO}', '/bar'],
  ['Environment replacement: ${foo}_bar', '${foo}_bar', 'x_bar'],
  ['Environment replacement: $foo_bar is one name', '$foo_bar', ''],
  ['Environment replacement: ${variable:-word} unset', '${NOPE:-word}', 'word'],
  ['Environment replacement: ${variable:-word} set', '${FOO:-word}', '/bar'],
  ['Environment replacement: ${variable:-word} empty counts as unset', '${EMPTY:-word}', 'word'],
  ['Environment replacement: ${variable-word} empty is set', '${EMPTY-word}', ''],
  ['Environment replacement: ${variable-word} unset', '${NOPE-word}', 'word'],
  ['Environment replacement: ${variable:+word} set', '${FOO:+word}', 'word'],
  ['Environment replacement: ${variable:+word} unset', '${NOPE:+word}', ''],
  ['Environment replacement: ${variable:+word} empty', '${EMPTY:+word}', ''],
  ['Environment replacement: ${variable+word} empty is set', '${EMPTY+word}', 'word'],
  ['Environment replacement: word may contain variables', '${NOPE:-$FOO/x}', '/bar/x'],
  ['Environment replacement: ${variable:?msg} set', '${FOO:?boom}', '/bar'],
  ['Environment replacement: ${variable?msg} empty is fine', '${EMPTY?boom}', ''],
  ['Environment replacement: ${variable#pattern} (docs: str=foobarbaz ${str#f*b} → arbaz)', '${str#f*b}', 'arbaz'],
  ['Environment replacement: ${variable##pattern} (docs → az)', '${str##f*b}', 'az'],
  ['Environment replacement: ${variable%pattern} (docs → foobar)', '${string%b*}', 'foobar'],
  ['Environment replacement: ${variable%%pattern} (docs → foo)', '${string%%b*}', 'foo'],
  ['Environment replacement: ${variable/pattern/replacement} (docs → fooforbaz)', '${string/ba/fo}', 'fooforbaz'],
  ['Environment replacement: ${variable//pattern/replacement} (docs → fooforfoz)', '${string//ba/fo}', 'fooforfoz'],
  ['Environment replacement: # with ? wildcard', '${file#/?ome}', '/tux/book/book.tar.bz2'],
  ['Environment replacement: ## path basename', '${file##*/}', 'book.tar.bz2'],
  ['Environment replacement: % extension', '${file%.*}', '/home/tux/book/book.tar'],
  ['Environment replacement: %% all extensions', '${file%%.*}', '/home/tux/book/book'],
  ['Environment replacement: pattern that does not match leaves value', '${str#zzz}', 'foobarbaz'],
  ['Environment replacement: / with escaped slash', '${FOO/\\//_}', '_bar'],
  ['Environment replacement: escaping \\$foo is literal', '\\$foo', '$foo'],
  ['Environment replacement: escaping \\${foo} is literal', '\\${foo}', '${foo}'],
  ['Environment replacement: single quotes do not expand', "'$FOO'", '$FOO'],
  ['Environment replacement: double quotes expand', '"$FOO"', '/bar'],
  ['Environment replacement: escaped quote in double quotes', '"a\\"b"', 'a"b'],
  ['Environment replacement: other escapes kept inside double quotes', '"a\\nb"', 'a\\nb'],
  ['Environment replacement: escaped space', 'a\\ b', 'a b'],
  ['Environment replacement: lone $ is literal', 'a$', 'a$'],
  ['Environment replacement: $ before non-name is literal', '$/x', '$/x'],
  ['Environment replacement: special parameter $1 unset', '$1x', 'x'],
  ['Environment replacement: trailing escape dropped', 'abc\\', 'abc'],
];

test('shell lexer table (docs: Environment replacement)', async (t) => {
  for (const [section, word, want] of table) {
    await t.test(`${section}: ${word}`, () => assert.equal(ex(word), want));
  }
});

test('Environment replacement: errors are UserErrors with the message BuildKit gives', () => {
  const cases: [string, RegExp][] = [
    ['${NOPE:?must be set}', /NOPE: must be set/],
    ['${NOPE?}', /NOPE: is not allowed to be unset/],
    ['${EMPTY:?}', /EMPTY: is not allowed to be empty/],
    ['${', /missing '}'/],
    ['${FOO:-x', /missing '}'/],
    ['${FOO', /unsupported modifier/],
    ['${}', /bad substitution/],
    ['${:x}', /bad substitution/],
    ['${FOO:x}', /unsupported modifier \(:x\)/],
    ['${FOO!}', /unsupported modifier \(!\)/],
    ["'abc", /matching single-quote/],
    ['"abc', /matching double-quote/],
    ['${FOO/a', /missing '\/' in \$\{\}/],
    ['${FOO#\\x}', /invalid escape/],
  ];
  for (const [w, re] of cases) {
    assert.throws(() => ex(w), (e: unknown) => e instanceof UserError && re.test(e.message), w);
  }
});

test('Environment replacement: words split on unquoted whitespace, also from values', () => {
  assert.deepEqual(lex.processWords('a "b c" $SPACED', env), ['a', 'b c', 'a', 'b']);
  assert.deepEqual(lex.processWords('"$SPACED"', env), ['a  b']);
  assert.deepEqual(lex.processWords("x''", env), ['x']);
  assert.deepEqual(lex.processWords('80/tcp   443', env), ['80/tcp', '443']);
});

test('escape directive: backtick escapes in the lexer', () => {
  const bt = new ShellLex({ escapeToken: '`' });
  assert.equal(bt.processWord('`$FOO', env), '$FOO');
  assert.equal(bt.processWord('c:\\path\\$FOO', env), 'c:\\path\\/bar');
  assert.equal(bt.processWord('"a`"b"', env), 'a"b');
});

test('lexer options: skipUnsetEnv keeps unknown variables, rawQuotes keeps quotes', () => {
  const skip = new ShellLex({ skipUnsetEnv: true });
  assert.equal(skip.processWord('$NOPE ${NOPE} ${NOPE:-x} $FOO', env), '$NOPE ${NOPE} ${NOPE:-x} /bar');
  const raw = new ShellLex({ rawQuotes: true });
  assert.equal(raw.processWord(`'a' "b"`, env), `'a' "b"`);
  const r = lex.process('$FOO $NOPE', env);
  assert.deepEqual([...r.matched], ['FOO']);
  assert.deepEqual([...r.unmatched], ['NOPE']);
});

test('Environment replacement: pattern matching follows Go RE2 (no hang, `*` stops at newline, $0 in //)', () => {
  const big = new Map([['A', 'a'.repeat(20000)], ['NL', 'ab\ncd'], ['S', 'a.b.c']]);
  const start = performance.now();
  assert.equal(lex.processWord('${A//*a*a*a*a*a*b/x}', big).length, 20000);
  assert.equal(lex.processWord('${A%%a*a*a*a*b}', big).length, 20000);
  assert.ok(performance.now() - start < 5000, 'linear-time matching');
  assert.equal(lex.processWord('${NL#*b}', big), '\ncd');
  assert.equal(lex.processWord('${NL##*d}', big), 'ab\ncd'); // `*` does not cross the newline
  assert.equal(lex.processWord('${S//./[$0]}', new Map([...big, ['0', 'zero']])), 'a[zero]b[zero]c');
  assert.equal(lex.processWord('${S//./[\\$0]}', big), 'a[\\.]b[\\.]c'); // raw escapes kept; Go's ReplaceAllString expands $0
  assert.equal(lex.processWord('${S/./[\\$0]}', big), 'a[\\$0]b.c'); // first-match replacement is literal
  assert.equal(lex.processWord('${S//x*/-}', big), 'a.b.c');
  assert.equal(lex.processWord('${S//*/-}', big), '-');
  assert.throws(() => lex.processWord('${S//\\./-}', big), /invalid escape '\\.'/); // only \* \? \\ escape
  assert.equal(lex.processWord('${S//\\*/-}', new Map([['S', 'a*b']])), 'a-b');
});

test('a variable name runs over letters, digits and _ as Go’s unicode classes say, ASCII or not', () => {
  // The lexer answers ASCII without its \p{…} patterns; every character of the BMP gets the same answer.
  const nameChar = /^[\p{L}\p{Nd}_]$/u;
  for (let code = 0x21; code < 0x10000; code++) {
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const c = String.fromCharCode(code);
    if ('$\\\'"{}'.includes(c)) continue;
    const names = new Map([['v', 'short'], [`v${c}`, 'long']]);
    assert.equal(lex.processWord(`$v${c}`, names), nameChar.test(c) ? 'long' : `short${c}`, `U+${code.toString(16)}`);
  }
  assert.deepEqual(lex.processWords('a\u2003b\u00a0c\td', new Map()), ['a', 'b', 'c', 'd'], 'Unicode and ASCII spaces split words');
});
