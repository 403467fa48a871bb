// `slipway build` as users run it: a child process, flags, exit codes, one clear error line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runCliProcess } from '../harness/cli.ts';

const exec = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = join(root, 'src/cli/main.ts');

async function slipway(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}) {
  return runCliProcess(args, opts);
}

function context(dockerfile: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cli-'));
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
  return dir;
}

test('slipway build: the README example writes an OCI tarball skopeo reads, and a metadata file', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'slipway-cli-out-')), 'hello.tar');
  const meta = out + '.json';
  const cache = mkdtempSync(join(tmpdir(), 'slipway-cli-cache-'));
  const r = await slipway(['build', '--cache-dir', cache, '-t', 'example.com/hello:1', '--output', `type=oci,dest=${out}`, '--metadata-file', meta, 'examples/hello'], { env: { SOURCE_DATE_EPOCH: '0' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /#\d+ \[stage-0 \d\/\d+\] COPY --chmod=0644 greeting.txt \/srv\//);
  const { stdout } = await exec('skopeo', ['inspect', `oci-archive:${out}:1`]);
  const inspected = JSON.parse(stdout);
  const metadata = JSON.parse(readFileSync(meta, 'utf8'));
  assert.equal(inspected.Digest, metadata['containerimage.digest']);
  assert.equal(inspected.Labels['org.opencontainers.image.title'], 'hello');
  assert.equal(inspected.Created, '1970-01-01T00:00:00Z');
  // Nothing changed: every step comes from the cache and the digest is the same.
  const again = await slipway(['build', '--cache-dir', cache, '--progress', 'quiet', '-o', `type=oci,dest=${out}`, 'examples/hello'], { env: { SOURCE_DATE_EPOCH: '0' } });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout.trim(), metadata['containerimage.digest']);
});

test('slipway build --call targets and --call outline print the stages and the build args', async () => {
  const dir = context('ARG BASE=scratch\n# base provides the common bits\nFROM ${BASE} AS base\n# VERSION sets the version\nARG VERSION=1.0\nFROM base AS app\n');
  const targets = await slipway(['build', '--call', 'targets', dir]);
  assert.equal(targets.code, 0, targets.stderr);
  assert.match(targets.stdout, /base\s+provides the common bits/);
  assert.match(targets.stdout, /app \(default\)/);
  const outline = await slipway(['build', '--call', 'outline', '--target', 'base', dir]);
  assert.equal(outline.code, 0, outline.stderr);
  assert.match(outline.stdout, /VERSION\s+1\.0\s+sets the version/);
});

test('slipway build: bad input gets one clear error and exit code 1', async () => {
  const bad = context('FROM scratch\nCOPY --chown=1:1 --bogus=1 a /\n');
  const cases: Array<[string[], RegExp]> = [
    [['build', bad], /Dockerfile:2:1: unknown flag: bogus\n {2}2 \| COPY --chown=1:1 --bogus=1 a \/\n {2}hint: COPY accepts --from/],
    [['build', '--platform', 'linux//arm64', 'examples/hello'], /invalid platform "linux\/\/arm64"/],
    [['build', '--platform', 'foo', 'examples/hello'], /invalid platform "foo": unknown architecture "foo"/],
    [['build', '--platform', 'linux/amd46', 'examples/hello'], /unknown architecture "amd46" \(did you mean linux\/amd64\?\)/],
    [['build', '--platform', 'linx/arm64', 'examples/hello'], /unknown operating system "linx" \(did you mean linux\?\)/],
    [['build', context('FROM --platform=linux/foo scratch\nCOPY a /\n')], /Dockerfile:1.*failed to parse platform linux\/foo: invalid platform "linux\/foo": unknown architecture "foo"/],
    [['build', '--push', 'examples/hello'], /pushing needs at least one tag/],
    [['build', 'no/such/dir'], /build context .*no\/such\/dir is not a directory/],
    [['build', '--target', 'nope', 'examples/hello'], /target stage "?nope"? (could not be found|not found)/i],
    [['build', '--frobnicate', 'examples/hello'], /slipway build: Unknown option '--frobnicate'/],
    [['build', '--platfrom', 'linux/amd64', 'examples/hello'], /Unknown option '--platfrom' \(did you mean --platform\?\)/],
    [['build', '-o', 'type=tar,dest=x', 'examples/hello'], /unsupported output type "tar"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await slipway(args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.match(r.stderr, /^error: /m);
    assert.doesNotMatch(r.stderr, /\n\s+at .*\.ts:\d+/, 'no stack trace');
  }
});

test('slipway help COMMAND, -v and --version, and a typo in a command name', async () => {
  const help = await slipway(['help', 'build']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: slipway build \[OPTIONS\] CONTEXT/);
  for (const flag of ['-v', '-V', '--version', 'version']) {
    const v = await slipway([flag]);
    assert.equal(v.code, 0, flag);
    assert.match(v.stdout, /^slipway \d+\.\d+\.\d+\n$/);
  }
  const typo = await slipway(['biuld', '.']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown command "biuld" \(did you mean "build"\?\)/);
  assert.match((await slipway(['--help'])).stdout, /version\s+Print the version \(also -v, --version\)/);
});

test('slipway --help and build --help describe the commands', async () => {
  const top = await slipway(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /build\s+Build an image from a Dockerfile/);
  const help = await slipway(['build', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--file', '--tag', '--build-arg', '--target', '--platform', '--label', '--push', '--output', '--no-cache', '--secret', '--network', '--progress', '--metadata-file', '--cache-dir', '--per-arch-tags', '--call', '--allow', '--cdi-spec-dir', '--compression', '--compression-level', 'force-compression']) {
    assert.ok(help.stdout.includes(flag), `--help mentions ${flag}`);
  }
});

test('slipway build without RUN needs no privileges: the hello example as an unprivileged user', { skip: process.getuid?.() !== 0 && 'needs root to switch to an unprivileged user' }, async () => {
  const work = mkdtempSync(join(tmpdir(), 'slipway-unpriv-'));
  await exec('chown', ['65534:65534', work]);
  const out = join(work, 'hello.tar');
  const r = await exec('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, cli, 'build', '--progress', 'plain',
    '--cache-dir', join(work, 'cache'), '-o', `type=oci,dest=${out}`, join(root, 'examples/hello')], { env: { ...process.env, HOME: work } });
  assert.match(r.stderr, /wrote .*hello\.tar/);
  const { stdout } = await exec('skopeo', ['inspect', `oci-archive:${out}`]);
  assert.equal(JSON.parse(stdout).Labels['org.opencontainers.image.title'], 'hello');
  assert.equal((await exec('stat', ['-c', '%u', out])).stdout.trim(), '65534', 'written by the unprivileged user');
});
