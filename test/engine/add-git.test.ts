// ADD from a git repository, served by a real `git daemon` on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGitSource } from '../../src/fs/index.ts';
import { freePort } from '../harness/registry.ts';
import { buildContext, makeContext, run, unpackOci } from './helpers.ts';

const gitMissing = existsSync('/usr/lib/git-core/git-daemon') ? undefined : 'git daemon is not installed';
let daemon: ChildProcess | undefined;
let base = '';
const commits: Record<string, string> = {};

before(async () => {
  if (gitMissing) return;
  const root = mkdtempSync(join(tmpdir(), 'slipway-git-'));
  const work = join(root, 'work');
  mkdirSync(join(work, 'sub'), { recursive: true });
  writeFileSync(join(work, 'README'), 'top\n');
  writeFileSync(join(work, 'sub', 'inner.txt'), 'v1\n');
  const git = (...args: string[]) => run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await run('git', ['init', '-q', '-b', 'main', work]);
  await git('add', '.');
  await git('commit', '-qm', 'one');
  await git('tag', 'v1');
  writeFileSync(join(work, 'sub', 'inner.txt'), 'v2\n');
  await git('commit', '-qam', 'two');
  await git('tag', '-a', '-m', 'annotated', 'v2a');
  for (const [name, rev] of [['v1', 'v1'], ['v2', 'main'], ['tag', 'v2a']]) commits[name] = (await git('rev-parse', rev)).stdout.trim();
  // A branch and a tag of the same name, on different commits: branch= and tag= must tell them apart.
  await git('branch', 'dup', 'main');
  await git('tag', 'dup', 'v1');
  await run('git', ['clone', '-q', '--bare', work, join(root, 'repo.git')]);
  const port = await freePort();
  // A repository with a submodule served by the daemon, and one whose submodule is a host path.
  const lib = join(root, 'libwork');
  await run('git', ['init', '-q', '-b', 'main', lib]);
  writeFileSync(join(lib, 'lib.txt'), 'lib\n');
  await run('git', ['-C', lib, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'lib', '--allow-empty']);
  await run('git', ['-C', lib, 'add', '.']);
  await run('git', ['-C', lib, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'lib file']);
  await run('git', ['clone', '-q', '--bare', lib, join(root, 'lib.git')]);
  for (const [name, url] of [['withsub', `git://127.0.0.1:${port}/lib.git`], ['hostsub', `file://${join(root, 'lib.git')}`]]) {
    const w = join(root, `${name}work`);
    const g = (...args: string[]) => run('git', ['-C', w, '-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'protocol.file.allow=always', ...args]);
    await run('git', ['init', '-q', '-b', 'main', w]);
    writeFileSync(join(w, 'top.txt'), 'top\n');
    await g('submodule', 'add', '-q', join(root, 'lib.git'), 'lib');
    await g('config', '-f', '.gitmodules', 'submodule.lib.url', url);
    await g('add', '.');
    await g('commit', '-qm', 'with a submodule');
    await run('git', ['clone', '-q', '--bare', w, join(root, `${name}.git`)]);
  }
  daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${root}`, '--listen=127.0.0.1', `--port=${port}`, root], { stdio: 'ignore' });
  base = `git://127.0.0.1:${port}/repo.git`;
  for (let i = 0; i < 50; i++) {
    if (await run('git', ['ls-remote', base]).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('git daemon did not start');
});
after(() => { daemon?.kill(); });

test('ADD git sources are recognised as BuildKit does: URL, #ref and :subdir', () => {
  assert.deepEqual(parseGitSource('https://github.com/moby/buildkit.git#v0.10.1:docs'), { remote: 'https://github.com/moby/buildkit.git', ref: 'v0.10.1', subdir: 'docs' });
  assert.deepEqual(parseGitSource('git@github.com:moby/buildkit.git'), { remote: 'git@github.com:moby/buildkit.git' });
  assert.deepEqual(parseGitSource('git://host/repo.git#main'), { remote: 'git://host/repo.git', ref: 'main' });
  assert.equal(parseGitSource('https://example.com/file.tar.gz'), undefined);
  assert.equal(parseGitSource('local.git'), undefined, 'a local path ending in .git is a context file');
});

test('ADD <git url>#ref:subdir copies that tree; --keep-git-dir keeps .git; a bad ref is one clear error', { skip: gitMissing }, async () => {
  const ctx = makeContext({
    Dockerfile: `FROM scratch\nADD ${base}#v1:sub /old/\nADD ${base} /head\nADD --keep-git-dir=true ${base}#main /withgit/\n`,
  });
  const out = join(ctx, 'g.tar');
  await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
  const rootfs = join(await unpackOci(out), 'rootfs');
  assert.equal(readFileSync(join(rootfs, 'old/inner.txt'), 'utf8'), 'v1\n');
  assert.ok(!existsSync(join(rootfs, 'old/README')), 'only the subdir');
  assert.equal(readFileSync(join(rootfs, 'head/sub/inner.txt'), 'utf8'), 'v2\n');
  assert.ok(!existsSync(join(rootfs, 'head/.git')));
  assert.ok(existsSync(join(rootfs, 'withgit/.git/HEAD')));
  const bad = makeContext({ Dockerfile: `FROM scratch\nADD ${base}#no-such-ref /x/\n` });
  await assert.rejects(buildContext(bad, { outputs: [`type=oci,dest=${join(bad, 'x.tar')}`] }), /Dockerfile:2: ADD: cannot fetch no-such-ref of git:\/\/127\.0\.0\.1/);
});

test('ADD --checksum=<commit> of a git source (frontend 1.16): a prefix of the commit, or of an annotated tag, pins it; a mismatch fails clearly', { skip: gitMissing }, async () => {
  assert.notEqual(commits.tag, commits.v2, 'v2a is a tag object');
  const ctx = makeContext({
    Dockerfile: `FROM scratch\nADD --checksum=${commits.v1.slice(0, 10)} ${base}#v1:sub /old/\n`
      + `ADD --checksum=${commits.v2} ${base}#v2a /tagged/\nADD --checksum=${commits.tag.slice(0, 8)} ${base}?tag=v2a&subdir=sub /q/\n`
      + `ADD --checksum=${commits.v1.slice(0, 7)} ${base}#${commits.v1}:sub /bysha/\n`,
  });
  const out = join(ctx, 'g.tar');
  await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
  const rootfs = join(await unpackOci(out), 'rootfs');
  assert.equal(readFileSync(join(rootfs, 'old/inner.txt'), 'utf8'), 'v1\n');
  assert.equal(readFileSync(join(rootfs, 'tagged/sub/inner.txt'), 'utf8'), 'v2\n');
  assert.equal(readFileSync(join(rootfs, 'q/inner.txt'), 'utf8'), 'v2\n');
  assert.equal(readFileSync(join(rootfs, 'bysha/inner.txt'), 'utf8'), 'v1\n');
  const fails = async (add: string, re: RegExp) => {
    const bad = makeContext({ Dockerfile: `FROM scratch\n${add}\n` });
    await assert.rejects(buildContext(bad, { outputs: [`type=oci,dest=${join(bad, 'x.tar')}`] }), re);
  };
  await fails(`ADD --checksum=${commits.v1} ${base}#main /x/`, new RegExp(`Dockerfile:2: ADD: main of git://127\\.0\\.0\\.1:\\d+/repo\\.git is commit ${commits.v2}, expected ${commits.v1}`));
  await fails(`ADD --checksum=${commits.v2} ${base}#${commits.v1} /x/`, new RegExp(`is commit ${commits.v1}, expected ${commits.v2}`));
  await fails(`ADD --checksum=${commits.v1} ${base}#v2a /x/`, new RegExp(`is commit ${commits.v2} \\(tag ${commits.tag}\\), expected ${commits.v1}`));
  await fails(`ADD --checksum=${commits.v1} ${base}?ref=main&checksum=${commits.v2} /x/`, /Dockerfile:2: checksum mismatch ".*" != ".*"/);
  await fails(`ADD --checksum=sha256:${'0'.repeat(64)} ${base} /x/`, /invalid checksum sha256:0+ for Git URL, expected hex commit hash/);
  await fails(`ADD --checksum=${commits.v1} ctxfile /x/`, /Dockerfile:2:1: checksum requires HTTP\(S\) or Git sources/);
});

test('the query form: branch= and tag= name refs/heads/… and refs/tags/…; commit= is checksum=; bad queries are clear errors', () => {
  assert.deepEqual(parseGitSource('git://h/r.git?branch=dup&commit=abc&submodules'), { remote: 'git://h/r.git', ref: 'refs/heads/dup', checksum: 'abc', submodules: true });
  assert.deepEqual(parseGitSource('git://h/r.git?ref=refs/tags/v1&tag=v1&submodules=false&keep-git-dir'), { remote: 'git://h/r.git', ref: 'refs/tags/v1', submodules: false, keepGitDir: true });
  assert.throws(() => parseGitSource('git://h/r.git?tag=a&branch=b'), /branch conflicts with tag/);
  assert.throws(() => parseGitSource('git://h/r.git?ref=main&tag=v1'), /ref conflicts: "main" vs "refs\/tags\/v1"/);
  assert.throws(() => parseGitSource('git://h/r.git?subdir=a&subdir=b'), /query "subdir" has multiple values/);
  assert.throws(() => parseGitSource('git://h/r.git?ref='), /query "ref" has no value/);
  assert.throws(() => parseGitSource('git://h/r.git?submodules=maybe'), /submodules=maybe is not a boolean/);
});

test('ADD of a git source in the query form: branch= and tag= of the same name differ; submodules are checked out unless submodules=false', { skip: gitMissing }, async () => {
  const host = base.slice(0, -'/repo.git'.length);
  const ctx = makeContext({
    Dockerfile: `FROM scratch\nADD ${base}?branch=dup&subdir=sub /br/\nADD ${base}?tag=dup&subdir=sub /tg/\n`
      + `ADD ${host}/withsub.git /s/\nADD ${host}/withsub.git?submodules=false /n/\nADD ${base}?ref=main&keep-git-dir=true /k/\n`,
  });
  const out = join(ctx, 'g.tar');
  await buildContext(ctx, { outputs: [`type=oci,dest=${out}`] });
  const rootfs = join(await unpackOci(out), 'rootfs');
  assert.equal(readFileSync(join(rootfs, 'br/inner.txt'), 'utf8'), 'v2\n');
  assert.equal(readFileSync(join(rootfs, 'tg/inner.txt'), 'utf8'), 'v1\n');
  assert.equal(readFileSync(join(rootfs, 's/top.txt'), 'utf8'), 'top\n');
  assert.equal(readFileSync(join(rootfs, 's/lib/lib.txt'), 'utf8'), 'lib\n');
  // No .git directory; the submodule keeps git's one-line .git file, as in BuildKit's checkout.
  assert.ok(!existsSync(join(rootfs, 's/.git')));
  assert.match(readFileSync(join(rootfs, 's/lib/.git'), 'utf8'), /^gitdir: \.\.\/\.git\/modules\/lib\n$/);
  assert.equal(readFileSync(join(rootfs, 'n/top.txt'), 'utf8'), 'top\n');
  assert.ok(!existsSync(join(rootfs, 'n/lib/lib.txt')), 'submodules=false leaves the submodule out');
  assert.ok(existsSync(join(rootfs, 'k/.git/HEAD')));
  // A submodule that is a host path is never read by a Dockerfile's ADD.
  const bad = makeContext({ Dockerfile: `FROM scratch\nADD ${host}/hostsub.git /x/\n` });
  await assert.rejects(buildContext(bad, { outputs: [`type=oci,dest=${join(bad, 'x.tar')}`] }), /Dockerfile:2: ADD: failed to update submodules for git:\/\/127\.0\.0\.1:\d+\/hostsub\.git/);
});
