// Parser table, from docs.docker.com/reference/dockerfile ("Format", "Parser directives",
// "Shell and exec form", "Here-documents") and BuildKit's parser behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDockerfile } from '../../src/dockerfile/parser.ts';
import { chompHeredoc } from '../../src/dockerfile/heredoc.ts';
import { DockerfileError } from '../../src/dockerfile/errors.ts';
import { UserError } from '../../src/errors.ts';

const one = (text: string) => parseDockerfile(text).nodes;
const throwsDf = (text: string, re: RegExp, line?: number): void => {
  assert.throws(() => parseDockerfile(text), (e: unknown) => {
    assert.ok(e instanceof DockerfileError && e instanceof UserError, `not a DockerfileError: ${String(e)}`);
    assert.match(e.message, re);
    assert.match(e.message, /^Dockerfile:\d+:\d+: /);
    if (line !== undefined) assert.equal(e.range.startLine, line);
    assert.ok(e.hint, 'has a hint');
    return true;
  });
};

test('Format: instructions are case-insensitive; comments and blank lines ignored; ranges kept', () => {
  const n = one('# comment\n\nfrom alpine\n  RuN echo hi # not a comment\n');
  assert.equal(n.length, 2);
  assert.equal(n[0].keyword, 'from');
  assert.deepEqual(n[0].args, ['alpine']);
  assert.deepEqual(n[0].range, { startLine: 3, endLine: 3, column: 1 });
  assert.equal(n[1].keyword, 'run');
  assert.deepEqual(n[1].args, ['echo hi # not a comment']);
  assert.deepEqual(n[1].range, { startLine: 4, endLine: 4, column: 3 });
  assert.deepEqual(n[0].comments, ['comment']);
});

test('Format: line continuation joins lines; comment and blank lines inside continuations are skipped (with a warning)', () => {
  const r = parseDockerfile('FROM a\nRUN echo hello \\\n# comment\n\n  world\n');
  assert.equal(r.nodes[1].args[0], 'echo hello   world');
  assert.deepEqual(r.nodes[1].range, { startLine: 2, endLine: 5, column: 1 });
  assert.equal(r.warnings.length, 2);
  assert.match(r.warnings[0], /Empty continuation line/);
});

test('Format: escape before trailing whitespace still continues; escaped escape does too (BuildKit regex)', () => {
  assert.equal(one('FROM a\nRUN a \\  \nb\n')[1].args[0], 'a b');
  const n = one('FROM a\nRUN a\\\\\nb\n'); // "a\\" at line end: not a continuation (BuildKit's regex)
  assert.equal(n[1].args[0], 'a\\\\');
  assert.equal(n[2].keyword, 'b');
});

test('Format: CRLF line endings and a UTF-8 BOM are accepted', () => {
  const n = one('\uFEFFFROM a\r\nRUN x \\\r\n y\r\n');
  assert.equal(n[0].args[0], 'a');
  assert.equal(n[1].args[0], 'x  y');
});

test('Parser directives: syntax, escape, check at the top', () => {
  const r = parseDockerfile('# syntax=docker/dockerfile:1\n# check=skip=JSONArgsRecommended;error=true\n#escape=`\nFROM a\nRUN dir c:\\ `\n  x\n');
  assert.deepEqual(r.directives, { syntax: 'docker/dockerfile:1', check: 'skip=JSONArgsRecommended;error=true', escape: '`' });
  assert.equal(r.escapeToken, '`');
  assert.equal(r.nodes[1].args[0], 'dir c:\\   x');
});

test('Parser directives: docs example with escape=` on Windows paths (COPY testfile.txt c:\\)', () => {
  const r = parseDockerfile('# escape=`\n\nFROM microsoft/nanoserver\nCOPY testfile.txt c:\\\nRUN dir c:\\\n');
  assert.deepEqual(r.nodes[1].args, ['testfile.txt', 'c:\\']);
  assert.deepEqual(r.nodes[2].args, ['dir c:\\']);
});

test('Parser directives: after a comment, a blank line or an instruction they are plain comments', () => {
  for (const text of ['# About my dockerfile\n# escape=`\nFROM a\nRUN x \\\ny\n', '\n# escape=`\nFROM a\nRUN x \\\ny\n', 'FROM a\n# escape=`\nRUN x \\\ny\n', '# unknowndirective=value\n# escape=`\nFROM a\nRUN x \\\ny\n']) {
    const r = parseDockerfile(text);
    assert.equal(r.escapeToken, '\\', text);
    assert.equal(r.nodes[1].args[0], 'x y');
  }
});

test('Parser directives: repeated directive and bad escape token are errors', () => {
  throwsDf('# escape=\\\n# escape=`\nFROM a\n', /only one escape parser directive/, 2);
  throwsDf('# syntax=a\n# SYNTAX=b\nFROM a\n', /only one syntax parser directive/, 2);
  throwsDf('# escape=x\nFROM a\n', /invalid escape token 'x'/, 1);
});

test('Shell and exec form: JSON arrays parse as exec form; invalid JSON falls back to shell form', () => {
  const n = one('FROM a\nRUN ["/bin/bash", "-c", "echo hello"]\nRUN [\'/bin/bash\', \'-c\']\nCMD [ "a" ] trailing\nENTRYPOINT ["a",]\nCMD []\nRUN ["a\\"b"]\n');
  assert.deepEqual([n[1].json, n[1].args], [true, ['/bin/bash', '-c', 'echo hello']]);
  assert.deepEqual([n[2].json, n[2].args], [false, ["['/bin/bash', '-c']"]]);
  assert.deepEqual([n[3].json, n[3].args], [false, ['[ "a" ] trailing']]); // dockerfile 1.10+: text after the array → shell form
  assert.deepEqual([n[4].json, n[4].args], [false, ['["a",]']]);
  assert.deepEqual([n[5].json, n[5].args], [true, []]);
  assert.deepEqual(n[6].args, ['a"b']);
});

test('Shell and exec form: a JSON array of non-strings is an error', () => {
  throwsDf('FROM a\nCMD ["a", 1]\n', /arrays must be comprised of strings only/, 2);
});

test('Format: builder flags are split off, quotes and --name=value kept', () => {
  const n = one('FROM --platform=linux/amd64 a\nCOPY --chown="1:2" --link src dst\nRUN -- --notaflag\n');
  assert.deepEqual(n[0].flags, ['--platform=linux/amd64']);
  assert.deepEqual(n[1].flags, ['--chown=1:2', '--link']);
  assert.deepEqual(n[1].args, ['src', 'dst']);
  assert.deepEqual(n[2].flags, []);
  assert.deepEqual(n[2].args, ['--notaflag']);
});

test('ENV/LABEL: key=value pairs keep quotes for expansion; legacy "key value" form', () => {
  const n = one('FROM a\nENV MY_NAME="John Doe" MY_DOG=Rex\\ The\\ Dog\nENV MY_VAR my-value  and more\nLABEL "com.example.vendor"="ACME Incorporated"\n');
  assert.deepEqual(n[1].pairs, [{ key: 'MY_NAME', value: '"John Doe"', noDelim: false }, { key: 'MY_DOG', value: 'Rex\\ The\\ Dog', noDelim: false }]);
  assert.deepEqual(n[2].pairs, [{ key: 'MY_VAR', value: 'my-value  and more', noDelim: true }]);
  assert.deepEqual(n[3].pairs, [{ key: '"com.example.vendor"', value: '"ACME Incorporated"', noDelim: false }]);
  throwsDf('FROM a\nENV A=b c\n', /can't find = in "c"/, 2);
  throwsDf('FROM a\nENV ONLYKEY\n', /ENV must have two arguments/, 2);
});

test('Here-documents: RUN <<EOF body, several heredocs on one line, <<- strips tabs', () => {
  const n = one('FROM a\nRUN <<EOF\napt-get update\napt-get install -y curl\nEOF\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\nCOPY <<-EOT /script.sh\n\techo hello\n\tEOT\nRUN echo after\n');
  assert.deepEqual(n[1].heredocs, [{ name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: 'apt-get update\napt-get install -y curl\n' }]);
  assert.deepEqual(n[1].range, { startLine: 2, endLine: 5, column: 1 });
  assert.deepEqual(n[2].heredocs.map((h) => [h.name, h.content]), [['FILE1', 'I am\nfirst\n'], ['FILE2', 'I am\nsecond\n']]);
  assert.equal(n[3].heredocs[0].chomp, true);
  assert.equal(chompHeredoc(n[3].heredocs[0].content), 'echo hello\n');
  assert.deepEqual(n[4].args, ['echo after']);
});

test('Here-documents: quoted delimiters disable expansion; file descriptors are read', () => {
  const n = one('FROM a\nRUN <<"EOT" bash\necho "$FOO"\nEOT\nRUN <<\'E\'OF x\n$A\nEOF\nRUN 3<<EOF cat /proc/self/fd/3\nx\nEOF\n');
  assert.equal(n[1].heredocs[0].expand, false);
  assert.equal(n[1].heredocs[0].name, 'EOT');
  assert.equal(n[2].heredocs[0].expand, false);
  assert.equal(n[2].heredocs[0].name, 'EOF');
  assert.equal(n[3].heredocs[0].fileDescriptor, 3);
  assert.equal(n[3].heredocs[0].expand, true);
});

test('Here-documents: only RUN/COPY/ADD (and ONBUILD of them) in shell form take heredocs', () => {
  const n = one('FROM a\nCMD <<EOF\nONBUILD RUN <<EOF\nbody\nEOF\nRUN ["<<EOF"]\n');
  assert.equal(n[1].heredocs.length, 0);
  assert.equal(n[2].sub?.heredocs[0].content, 'body\n');
  assert.equal(n[3].heredocs.length, 0);
});

test('Here-documents: unterminated heredoc is an error naming the delimiter', () => {
  throwsDf('FROM a\nRUN <<EOF\necho hi\n', /unterminated heredoc EOF/, 2);
  // An unterminated quote makes BuildKit see no heredoc at all: a plain shell command.
  assert.equal(one('FROM a\nRUN <<"EOF\necho\n')[1].heredocs.length, 0);
});

test('Format: empty file and comment-only file are errors', () => {
  throwsDf('', /file with no instructions/);
  throwsDf('# just a comment\n\n', /file with no instructions/);
});

test('ONBUILD: keeps the trigger as a sub-node', () => {
  const n = one('FROM a\nONBUILD ADD . /app/src\n');
  assert.equal(n[1].sub?.keyword, 'add');
  assert.deepEqual(n[1].sub?.args, ['.', '/app/src']);
});

test('HEALTHCHECK: type word split off, then maybe-JSON', () => {
  const n = one('FROM a\nHEALTHCHECK --interval=5m CMD ["curl", "-f"]\nHEALTHCHECK NONE\n');
  assert.deepEqual([n[1].args, n[1].json, n[1].flags], [['CMD', 'curl', '-f'], true, ['--interval=5m']]);
  assert.deepEqual(n[2].args, ['NONE']);
});
