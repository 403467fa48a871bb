// The action's pure parts: the sudo decision, chowning outputs back, the default cache scope,
// log groups for interleaved steps, and inputs → request (secrets, booleans, lists).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { booleanInput, settingsFromInputs } from '../../src/action/inputs.ts';
import { chownBack, decideElevation, parseOwner, requestHasRun } from '../../src/action/privilege.ts';
import { defaultCacheScope } from '../../src/action/scope.ts';
import { groupedProgress, stepOutputLimit } from '../../src/action/progress.ts';
import { workflowCommands } from './helpers.ts';

const asRoot = process.getuid?.() === 0 ? undefined : 'chown needs root';

test('sudo is used only for RUN steps, as a non-root user, when password-less sudo works, and never twice', () => {
  const base = { uid: 1001, elevated: false, hasRun: true, sudo: '/usr/bin/sudo' };
  assert.equal(decideElevation(base).how, 'sudo');
  assert.equal(decideElevation({ ...base, uid: 0 }).how, 'in-process');
  assert.equal(decideElevation({ ...base, hasRun: false }).how, 'in-process');
  assert.equal(decideElevation({ ...base, sudo: undefined }).how, 'in-process');
  assert.match(decideElevation({ ...base, sudo: undefined }).why, /rootless/);
  assert.equal(decideElevation({ ...base, elevated: true }).how, 'in-process', 'the process started through sudo never re-runs itself');
  assert.deepEqual(parseOwner('1001:121'), { uid: 1001, gid: 121 });
  assert.equal(parseOwner('root'), undefined);
  assert.equal(parseOwner(undefined), undefined);
});

test('a build has RUN steps only when a stage the target needs has one', () => {
  const ws = mkdtempSync(join(tmpdir(), 'slipway-action-unit-'));
  const df = 'FROM busybox AS tools\nRUN echo hi\nFROM scratch AS app\nCOPY a /a\nFROM scratch AS withtools\nCOPY --from=tools /bin/sh /sh\n';
  writeFileSync(join(ws, 'Dockerfile'), df);
  const settings = (target: string) => settingsFromInputs((n) => ({ target, cache: 'false' } as Record<string, string>)[n] ?? '', {}, ws).request;
  assert.equal(requestHasRun(settings('app')), false);
  assert.equal(requestHasRun(settings('withtools')), true);
  assert.equal(requestHasRun(settings('tools')), true);
});

test('chownBack gives root-owned outputs and the directories made for them to the runner user, nothing else', { skip: asRoot }, () => {
  const root = mkdtempSync(join(tmpdir(), 'slipway-chown-'));
  const ws = join(root, 'workspace');
  mkdirSync(join(ws, 'out/deep/layout/blobs'), { recursive: true });
  writeFileSync(join(ws, 'out/deep/layout/index.json'), '{}');
  writeFileSync(join(ws, 'out/deep/layout/blobs/x'), 'x');
  writeFileSync(join(ws, 'untouched.txt'), 'u');
  writeFileSync(join(root, 'outside.txt'), 'o');
  writeFileSync(join(root, 'target.txt'), 't');
  symlinkSync(join(root, 'target.txt'), join(ws, 'out/deep/layout/link'));
  const owner = { uid: 4321, gid: 4322 };
  const changed = chownBack([join(ws, 'out/deep/layout'), join(root, 'outside.txt'), '/etc/passwd'], ws, owner);
  for (const p of ['out', 'out/deep', 'out/deep/layout', 'out/deep/layout/index.json', 'out/deep/layout/blobs', 'out/deep/layout/blobs/x']) {
    const st = statSync(join(ws, p));
    assert.deepEqual([st.uid, st.gid], [4321, 4322], p);
  }
  assert.equal(lstatSync(join(ws, 'out/deep/layout/link')).uid, 4321, 'the link itself changes owner');
  assert.equal(statSync(join(root, 'target.txt')).uid, 0, 'a symlink is not followed');
  for (const p of [ws, join(ws, 'untouched.txt'), join(root, 'outside.txt'), '/etc/passwd']) assert.equal(statSync(p).uid, 0, p);
  assert.equal(changed, 7);
});

test('default cache scope: target and platforms (sorted), the Dockerfile when not the default one', () => {
  const ws = '/w';
  const df = (p: string) => ({ path: p, contents: '' });
  const amd = { os: 'linux', architecture: 'amd64' };
  const arm = { os: 'linux', architecture: 'arm64', variant: 'v8' };
  assert.equal(defaultCacheScope({ platforms: [arm, amd], dockerfile: df('/w/Dockerfile') }, ws), 'default-linux-amd64+linux-arm64-v8');
  assert.equal(defaultCacheScope({ target: 'test', platforms: [amd], dockerfile: df('/w/Dockerfile') }, ws), 'test-linux-amd64');
  assert.equal(defaultCacheScope({ target: 'app', platforms: [amd], dockerfile: df('/w/services/api/Dockerfile') }, ws), 'services_api_Dockerfile-app-linux-amd64');
  assert.equal(defaultCacheScope({ platforms: [], dockerfile: df('/w/Dockerfile') }, ws, amd), 'default-linux-amd64', 'no platforms: the host');
  // Matrix jobs differ in their scope, so they never take each other's entries.
  assert.notEqual(defaultCacheScope({ platforms: [amd], dockerfile: df('/w/Dockerfile') }, ws), defaultCacheScope({ platforms: [arm], dockerfile: df('/w/Dockerfile') }, ws));
});

test('interleaved steps each print one whole group when they end; step output cannot issue workflow commands', () => {
  let out = '';
  let t = 0;
  const p = groupedProgress((text) => { out += text; }, { now: () => t });
  const a = p.step('[linux/amd64 1/2] RUN a');
  const b = p.step('[linux/arm64 1/2] RUN b');
  a.log(Buffer.from('a1\n'));
  b.log(Buffer.from('b1\n::add-mask::x\n::error::spoofed\n'));
  a.log(Buffer.from('a2'));
  t = 1500;
  b.done();
  a.failed(new Error('exit code 2\nsecond line'));
  const c = p.step('[linux/amd64 2/2] COPY x');
  c.cached();
  const expected: (string | RegExp)[] = [
    '::group::[linux/arm64 1/2] RUN b  DONE 1.5s',
    /^::stop-commands::[a-f0-9]{24}$/, 'b1', '::add-mask::x', '::error::spoofed', /^::[a-f0-9]{24}::$/,
    '::endgroup::',
    '::group::[linux/amd64 1/2] RUN a  FAILED 1.5s',
    /^::stop-commands::[a-f0-9]{24}$/, 'a1', 'a2', /^::[a-f0-9]{24}::$/,
    'ERROR: exit code 2', 'ERROR: second line',
    '::endgroup::',
    '::group::[linux/amd64 2/2] COPY x  CACHED',
    '::endgroup::', '',
  ];
  const lines = out.split('\n');
  assert.equal(lines.length, expected.length, out);
  expected.forEach((e, i) => (typeof e === 'string' ? assert.equal(lines[i], e) : assert.match(lines[i], e)));
  assert.deepEqual(workflowCommands(out).filter((l) => !/^::(group|endgroup|stop-commands)/.test(l)), [], 'nothing from step output is obeyed');
});

test('a step with huge output keeps its last part and says how much was dropped', () => {
  let out = '';
  const p = groupedProgress((text) => { out += text; });
  const s = p.step('RUN noisy');
  const chunk = Buffer.alloc(1 << 20, 'x');
  for (let i = 0; i < 10; i++) s.log(chunk);
  s.log(Buffer.from('\nlast line\n'));
  s.done();
  assert.ok(out.length <= stepOutputLimit + 4096, `${out.length} bytes printed`);
  assert.match(out, /\[\d+ bytes of earlier output not shown\]/);
  assert.match(out, /last line\n::[a-f0-9]{24}::\n::endgroup::\n$/);
});

test('inputs: lists, booleans, secrets in build-push-action form, relative output paths', () => {
  const ws = mkdtempSync(join(tmpdir(), 'slipway-action-unit-'));
  writeFileSync(join(ws, 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(join(ws, 'npmrc'), '//registry/:_authToken=abc123\nalways-auth=true\n');
  const inputs: Record<string, string> = {
    'build-args': 'A=1,2\nB=x=y\n# comment\n',
    labels: 'org.example.x=a,b',
    platforms: 'linux/amd64\nlinux/arm64,linux/amd64',
    tags: 'r.example/app:1,r.example/app:latest',
    outputs: 'type=oci,dest=out/img.tar\ntype=docker,dest=/abs/d.tar',
    secrets: 'GIT_AUTH_TOKEN=abc,def\nEMPTYISH==\n"PEM=-----BEGIN KEY-----\nMIIB\n-----END KEY-----"',
    'secret-files': 'npmrc=npmrc',
    push: 'True',
    'cache-from': 'type=gha\ntype=registry,ref=r.example/app:buildcache',
    'cache-to': 'type=gha,mode=max\ntype=inline',
    isolation: 'ptrace',
    allow: 'security.insecure\ndevice=example.com/gpu=0,network.host',
    'no-cache-filters': 'Builder\ntest,lint',
  };
  const s = settingsFromInputs((n) => inputs[n] ?? '', { RUNNER_TEMP: '/runner/_temp' }, ws);
  assert.deepEqual(s.request.buildArgs, { A: '1,2', B: 'x=y' });
  assert.deepEqual(s.request.labels, { 'org.example.x': 'a,b' });
  assert.deepEqual(s.request.platforms.map((p) => p.architecture), ['amd64', 'arm64']);
  assert.deepEqual(s.request.tags, ['r.example/app:1', 'r.example/app:latest']);
  assert.deepEqual(s.request.outputs, [{ type: 'oci', dest: join(ws, 'out/img.tar'), tar: true }, { type: 'docker', dest: '/abs/d.tar' }, { type: 'registry' }]);
  assert.deepEqual(s.request.secrets.map((x) => [x.id, x.value.toString()]), [['GIT_AUTH_TOKEN', 'abc,def'], ['EMPTYISH', '='], ['PEM', '-----BEGIN KEY-----\nMIIB\n-----END KEY-----'], ['npmrc', '//registry/:_authToken=abc123\nalways-auth=true\n']]);
  assert.ok(s.masks.includes('MIIB'), 'each line of a multi-line secret is masked');
  assert.ok(s.masks.includes('abc,def') && s.masks.includes('//registry/:_authToken=abc123'), JSON.stringify(s.masks));
  assert.equal(s.request.cacheDir, '/runner/_temp/slipway-cache');
  assert.deepEqual(s.request.cacheFrom, ['r.example/app:buildcache'], 'type=gha is the cache input; registry caches pass through');
  assert.equal(s.request.cacheTo, undefined);
  assert.deepEqual(s.warnings, ['cache-to: type=inline is not supported and is ignored (registry caches and the cache input are)']);
  assert.equal(s.cache, true);
  assert.equal(s.request.isolation, 'ptrace');
  assert.deepEqual(s.request.allow, { securityInsecure: true, networkHost: true, devices: { all: false, names: { 'example.com/gpu=0': '' } } });
  assert.equal(settingsFromInputs(() => '', {}, ws).request.allow, undefined, 'no allow input: no entitlements');
  assert.deepEqual(s.request.noCacheFilter, ['builder', 'test', 'lint']);
  assert.equal(settingsFromInputs(() => '', {}, ws).request.isolation, 'auto');
  assert.throws(() => settingsFromInputs((n) => (n === 'isolation' ? 'chroot' : ''), {}, ws), /invalid isolation "chroot": expected auto, runc, crun, rootless, ptrace/);
  assert.equal(s.cacheScope, 'default-linux-amd64+linux-arm64');
  assert.equal(booleanInput('x', ' FALSE ', true), false);
  assert.throws(() => booleanInput('push', 'yes', false), /input "push" is "yes": expected true or false/);
  assert.throws(() => settingsFromInputs((n) => ({ secrets: 'a=1\na=2' } as Record<string, string>)[n] ?? '', {}, ws), /secret "a" is given twice/);
  assert.throws(() => settingsFromInputs((n) => ({ secrets: '=novalue' } as Record<string, string>)[n] ?? '', {}, ws), (e: Error) => !e.message.includes('novalue'), 'a malformed secret line is not echoed');
});

test('action.yml declares exactly the inputs the action reads and the outputs it sets', async () => {
  const yml = readFileSync(join(import.meta.dirname, '../../action.yml'), 'utf8');
  const section = (name: string): string[] => {
    const body = yml.split(new RegExp(`^${name}:\\n`, 'm'))[1].split(/^\S/m)[0];
    return [...body.matchAll(/^ {2}([a-z-]+):$/gm)].map((m) => m[1]).sort();
  };
  const ws = mkdtempSync(join(tmpdir(), 'slipway-action-unit-'));
  writeFileSync(join(ws, 'Dockerfile'), 'FROM scratch\n');
  const read = new Set<string>(['cache-timeout']); // read by run.ts before the cache restore
  settingsFromInputs((n) => { read.add(n); return ''; }, {}, ws);
  assert.deepEqual(section('inputs'), [...read].sort());
  const { actionOutputs } = await import('../../src/action/summary.ts');
  const result = { digest: 'sha256:' + 'a'.repeat(64), imageId: 'sha256:' + 'b'.repeat(64), images: [], tags: [], pushed: [], written: [], steps: { cached: 0, run: 0 }, warnings: [] };
  assert.deepEqual(section('outputs'), Object.keys(actionOutputs(result)).sort());
  assert.match(yml, /using: node24\n\s+main: dist\/action\/main\.js\n\s+post: dist\/action\/post\.js/);
});
