// Build contexts as docker and buildx take them, through the real CLI: git (a real `git daemon`, a
// file:// remote, #ref:subdir and the ?ref=&subdir= form), tarball URLs from a local HTTP server
// (gzip, zstd, bzip2, xz), a plain Dockerfile URL, and "-" (a tar archive or a Dockerfile on stdin).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGitSource } from '../../src/fs/index.ts';
import { probePtrace } from '../../src/runtime/ptrace/index.ts';
import { freePort } from '../harness/registry.ts';
import { run, unpackOci } from '../engine/helpers.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src/cli/main.ts');

function slipway(args: string[], opts: { input?: Buffer | string; cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cli, ...args], { cwd: opts.cwd ?? root, env: { ...process.env, SOURCE_DATE_EPOCH: '0' } }, (e, stdout, stderr) => {
      resolve({ code: e ? (e as { code?: number }).code ?? 1 : 0, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? '');
  });
}

const gitMissing = existsSync('/usr/lib/git-core/git-daemon') ? undefined : 'git daemon is not installed';
let daemon: ChildProcess | undefined;
let server: Server | undefined;
let gitBase = '';
let bare = '';
let httpBase = '';
let tarDir = '';
let commitV1 = '';

const dockerfile = 'FROM scratch\nCOPY . /ctx/\n';

before(async () => {
  const top = mkdtempSync(join(tmpdir(), 'slipway-contexts-'));
  // A repository: v1 has app/Dockerfile + app/hello.txt "v1"; main has "v2" and a Dockerfile.alt.
  const work = join(top, 'work');
  mkdirSync(join(work, 'app'), { recursive: true });
  writeFileSync(join(work, 'app', 'Dockerfile'), dockerfile);
  writeFileSync(join(work, 'app', 'hello.txt'), 'v1\n');
  writeFileSync(join(work, 'Dockerfile'), 'FROM scratch\nCOPY app/hello.txt /top.txt\n');
  const git = (...args: string[]) => run('git', ['-C', work, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await run('git', ['init', '-q', '-b', 'main', work]);
  await git('add', '.');
  await git('commit', '-qm', 'one');
  await git('tag', 'v1');
  commitV1 = (await git('rev-parse', 'HEAD')).stdout.trim();
  writeFileSync(join(work, 'app', 'hello.txt'), 'v2\n');
  writeFileSync(join(work, 'app', 'Dockerfile.alt'), 'FROM scratch\nCOPY hello.txt /alt.txt\n');
  await git('add', '.');
  await git('commit', '-qm', 'two');
  bare = join(top, 'repo.git');
  await run('git', ['clone', '-q', '--bare', work, bare]);
  if (!gitMissing) {
    const port = await freePort();
    daemon = spawn('git', ['daemon', '--reuseaddr', '--export-all', `--base-path=${top}`, '--listen=127.0.0.1', `--port=${port}`, top], { stdio: 'ignore' });
    gitBase = `git://127.0.0.1:${port}/repo.git`;
    let up = false;
    for (let i = 0; i < 50 && !up; i++) {
      up = await run('git', ['ls-remote', gitBase]).then(() => true, () => false);
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) throw new Error('git daemon did not start');
  }
  // Tarballs of a context made by tar itself, compressed by the real tools.
  const ctx = join(top, 'tarctx');
  mkdirSync(join(ctx, 'sub'), { recursive: true });
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  writeFileSync(join(ctx, 'sub', 'file.txt'), 'from a tarball\n');
  tarDir = join(top, 'www');
  mkdirSync(tarDir);
  await run('tar', ['-C', ctx, '-cf', join(tarDir, 'ctx.tar'), '.']);
  for (const [tool, ext] of [['gzip', 'gz'], ['zstd', 'zst'], ['bzip2', 'bz2'], ['xz', 'xz']]) {
    await run('sh', ['-c', `${tool} -c < ${join(tarDir, 'ctx.tar')} > ${join(tarDir, `ctx.tar.${ext}`)}`]);
  }
  writeFileSync(join(tarDir, 'Dockerfile'), 'FROM scratch\nENV FROM=url\n');
  server = createServer((req, res) => {
    const file = join(tarDir, (req.url ?? '/').slice(1));
    if (!existsSync(file)) { res.writeHead(404).end(); return; }
    res.writeHead(200).end(readFileSync(file));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => { daemon?.kill(); server?.close(); });

async function built(args: string[], input?: Buffer | string): Promise<{ rootfs: string; config: Record<string, unknown>; cache: string }> {
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-ctx-out-')), 'img.tar');
  const cache = mkdtempSync(join(tmpdir(), 'slipway-ctx-cache-'));
  const r = await slipway(['build', '--cache-dir', cache, '-o', `type=oci,dest=${out}`, ...args], { input });
  assert.equal(r.code, 0, r.stderr);
  const bundle = await unpackOci(out);
  // The materialized context is gone after the build.
  assert.deepEqual(readdirSync(join(cache, 'tmp')), [], 'the context temp dir is removed');
  return { rootfs: join(bundle, 'rootfs'), config: JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')), cache };
}

function envOf(config: Record<string, unknown>): string[] {
  return (config as { process?: { env?: string[] } }).process?.env ?? [];
}

test('git sources: the #ref:subdir and the ?ref=&subdir=&keep-git-dir=&checksum= forms parse alike', () => {
  assert.deepEqual(parseGitSource('https://h/r.git?ref=v1&subdir=app'), { remote: 'https://h/r.git', ref: 'v1', subdir: 'app' });
  assert.deepEqual(parseGitSource(`https://h/r.git?tag=v1&keep-git-dir=true&checksum=${'a'.repeat(40)}`), { remote: 'https://h/r.git', ref: 'refs/tags/v1', keepGitDir: true, checksum: 'a'.repeat(40) });
  assert.deepEqual(parseGitSource('git@h:o/r#main:app'), { remote: 'git@h:o/r', ref: 'main', subdir: 'app' });
  assert.equal(parseGitSource('file:///srv/repo.git'), undefined, 'ADD never reads a host path as git');
  assert.deepEqual(parseGitSource('file:///srv/repo.git#v1', { allowFile: true }), { remote: 'file:///srv/repo.git', ref: 'v1' });
  assert.throws(() => parseGitSource('https://h/r.git?rev=1'), /unknown query parameter "rev"/);
  assert.throws(() => parseGitSource('https://h/r.git?ref=a#b'), /either after # or as \?ref=/);
  assert.throws(() => parseGitSource('https://h/r.git?keep-git-dir=maybe'), /not a boolean/);
});

test('a git context from git daemon: #ref:subdir is the context and holds the Dockerfile', { skip: gitMissing }, async () => {
  const v1 = await built([`${gitBase}#v1:app`]);
  assert.equal(readFileSync(join(v1.rootfs, 'ctx/hello.txt'), 'utf8'), 'v1\n');
  assert.ok(!existsSync(join(v1.rootfs, 'ctx/.git')), 'no .git by default');
  // No ref: the remote's HEAD; the Dockerfile at the repository root.
  const head = await built([gitBase]);
  assert.equal(readFileSync(join(head.rootfs, 'top.txt'), 'utf8'), 'v2\n');
  // The query form, with -f relative to the subdir and the .git dir kept.
  const q = await built(['-f', 'Dockerfile.alt', `${gitBase}?ref=main&subdir=app`]);
  assert.equal(readFileSync(join(q.rootfs, 'alt.txt'), 'utf8'), 'v2\n');
});

test('a file:// git remote, with checksum= pinning the commit', async () => {
  const r = await built([`file://${bare}?ref=v1&subdir=app&keep-git-dir=true&checksum=${commitV1.slice(0, 12)}`]);
  assert.equal(readFileSync(join(r.rootfs, 'ctx/hello.txt'), 'utf8'), 'v1\n');
  const bad = await slipway(['build', '-o', `type=oci,dest=${join(tmpdir(), 'slipway-ctx-unused.tar')}`, `file://${bare}?ref=main&checksum=${commitV1}`]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /build context: main of file:\/\/.* is commit [0-9a-f]{40}, expected [0-9a-f]{40}/);
});

for (const ext of ['tar', 'tar.gz', 'tar.zst', 'tar.bz2', 'tar.xz']) {
  test(`a tarball context over http: ${ext}`, async () => {
    const r = await built([`${httpBase}/ctx.${ext}`]);
    assert.equal(readFileSync(join(r.rootfs, 'ctx/sub/file.txt'), 'utf8'), 'from a tarball\n');
    assert.ok(existsSync(join(r.rootfs, 'ctx/Dockerfile')));
  });
}

test('a URL of a plain file is the Dockerfile, with an empty context', async () => {
  const r = await built([`${httpBase}/Dockerfile`]);
  assert.ok(envOf(r.config).includes('FROM=url'), JSON.stringify(envOf(r.config)));
});

test('"-" reads a tar context (any compression) or a Dockerfile from standard input; -f - stays the Dockerfile', async () => {
  const tgz = readFileSync(join(tarDir, 'ctx.tar.gz'));
  const r = await built(['-'], tgz);
  assert.equal(readFileSync(join(r.rootfs, 'ctx/sub/file.txt'), 'utf8'), 'from a tarball\n');
  const plain = await built(['-'], 'FROM scratch\nENV FROM=stdin\n');
  assert.ok(envOf(plain.config).includes('FROM=stdin'));
  const ctx = mkdtempSync(join(tmpdir(), 'slipway-ctx-dir-'));
  writeFileSync(join(ctx, 'a.txt'), 'a\n');
  const viaF = await built(['-f', '-', ctx], 'FROM scratch\nCOPY a.txt /\n');
  assert.equal(readFileSync(join(viaF.rootfs, 'a.txt'), 'utf8'), 'a\n');
});

test('context errors: one clear line and exit 1', async () => {
  const cases: Array<{ args: string[]; input?: string; message: RegExp }> = [
    { args: ['-f', '-', '-'], message: /the context and the Dockerfile cannot both be read from standard input/ },
    { args: [`file://${bare}#v1:nosuchdir`], message: /the repository has no directory nosuchdir/ },
    { args: [`file://${bare}#nosuchref`], message: /build context: cannot fetch nosuchref of file:\/\// },
    { args: [`${httpBase}/missing.tar.gz`], message: /build context: failed to download .*HTTP 404/ },
    { args: ['-f', 'Dockerfile', `${httpBase}/Dockerfile`], message: /is a single file \(no tar archive\), so -f Dockerfile names nothing/ },
    { args: ['-f', '../../etc/passwd', `${httpBase}/ctx.tar.gz`], message: /cannot read Dockerfile .*\/etc\/passwd/ },
    { args: ['ftp://example.com/ctx.tar'], message: /unsupported build context ftp:/ },
  ];
  for (const c of cases) {
    const r = await slipway(['build', '-o', `type=oci,dest=${join(tmpdir(), 'slipway-ctx-unused.tar')}`, ...c.args], { input: c.input });
    assert.equal(r.code, 1, `${c.args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, c.message, c.args.join(' '));
  }
});

test('buildx flags slipway cannot honour are refused, each with why, before any work', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--shm-size', '2g'], /--shm-size 2g is not supported/],
    [['--ulimit', 'nofile=1024:1024'], /--ulimit nofile=1024:1024 is not supported/],
    [['--allow', 'fs.read'], /unknown entitlement fs\.read/],
    [['--allow', 'device=example.com/a=b,size=1'], /unknown device config key "size"/],
    [['--add-host', 'db'], /invalid --add-host "db": expected HOST:IP/],
    [['-t', 'UPPER/case:tag'], /repository name must be lowercase/],
  ];
  for (const [args, message] of cases) {
    const r = await slipway(['build', ...args, 'examples/hello']);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});

test('--allow and --cdi-spec-dir reach the build: a missing required device names the dir searched; security.insecure is granted', async () => {
  const ctx = mkdtempSync(join(tmpdir(), 'slipway-cli-allow-'));
  const specs = join(ctx, 'cdi');
  mkdirSync(specs);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nRUN --device=example.com/x=y,required true\n');
  const out = ['-o', `type=oci,dest=${join(ctx, 'out.tar')}`];
  const r = await slipway(['build', ...out, '--allow', 'device', '--cdi-spec-dir', 'cdi', ctx], { cwd: ctx });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /Dockerfile:2: required device "example\.com\/x=y" is not registered/);
  assert.ok(r.stderr.includes(`searched ${specs}`), r.stderr);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nRUN --security=insecure true\n');
  const denied = await slipway(['build', ...out, ctx]);
  assert.match(denied.stderr, /Dockerfile:2: security\.insecure is not allowed/);
  // Granted, the step gets past the entitlement check, to the isolation's refusal.
  if (!probePtrace().ok) return;
  const granted = await slipway(['build', ...out, '--allow', 'security.insecure', '--isolation', 'ptrace', ctx]);
  assert.equal(granted.code, 1);
  assert.doesNotMatch(granted.stderr, /is not allowed/);
  assert.match(granted.stderr, /RUN --security=insecure cannot run privileged here: the ptrace isolation/);
});
