// dist/cli.js keeps a V8 code cache per command, named by the bundle's content, and makes it again
// when V8 refuses it. What the `slipway` command (the bundle in dist/) loads for a build against a local plain-http
// registry: no TLS (the loopback host is tried over http first and node:tls loads only for https)
// and no HTTP/2 (undici's HTTP/2 client is left out of the bundle); and a rebuild with nothing
// changed reads neither the per-file hash index nor any context file.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectDir } from '../harness/docker.ts';
import { fixturesMissing, pushFixture } from '../harness/fixtures.ts';
import { registryMissing, startRegistry } from '../harness/registry.ts';
import { runMissing } from '../engine/helpers.ts';

const cli = join(projectDir, 'dist/cli.js');
const skip = registryMissing() ?? fixturesMissing() ?? (existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)');

/**
 * A registry with a base image, a context of `files` (the Dockerfile gets the base's ref for
 * `BASE`), and `build(hookSource?, nodeArgs?, buildArgs?)`: dist/cli.js builds and pushes it with the given `--import`
 * hook (its source, written to a file), on one cache dir and its own code cache.
 */
async function workspace(t: TestContext, files: Record<string, string>) {
  const reg = await startRegistry();
  const dir = mkdtempSync(join(tmpdir(), 'slipway-startup-'));
  t.after(async () => { await reg.stop(); rmSync(dir, { recursive: true, force: true }); });
  const base = (await pushFixture(reg, 'amd64', 'library/base:1')).ref;
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(ctx, name), text.replace('BASE', base));
  const build = (hookSource?: string, nodeArgs: string[] = [], buildArgs: string[] = []) => {
    const hook = join(dir, 'hook.mjs');
    if (hookSource) writeFileSync(hook, hookSource);
    return promisify(execFile)(process.execPath, [...nodeArgs, ...(hookSource ? ['--import', hook] : []), cli, 'build', '--progress', 'plain', '--cache-dir', join(dir, 'cache'),
      '--insecure-registry', reg.host, ...buildArgs, '-t', `${reg.host}/startup/app:1`, '--push', ctx], { env: { ...process.env, NODE_COMPILE_CACHE: join(dir, 'compile-cache') } });
  };
  return { dir, ctx, build };
}

test('a cached build against a local registry: no node:tls, no node:http2, no child_process, zlib, worker_threads, assert, http or crypto, no hash index read, no build dir', { skip }, async (t) => {
  const files: Record<string, string> = { Dockerfile: 'FROM BASE\nCOPY . /app/\nENV READY=1\n' };
  for (let i = 0; i < 20; i++) files[`f${i}.txt`] = `file ${i}\n`;
  const { dir, ctx, build } = await workspace(t, files);
  // Old enough that the first build's sums and hashes are not racy.
  await new Promise((r) => setTimeout(r, 50));
  const report = join(dir, 'report.json');
  await build();
  const { stderr } = await build([
    "import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';",
    'const opened = []; const open = fs.openSync; const read = fs.readFileSync;',
    'fs.openSync = (p, ...a) => { opened.push(String(p)); return open(p, ...a); };',
    'fs.readFileSync = (p, ...a) => { if (typeof p === "string") opened.push(p); return read(p, ...a); };',
    'const fsp = fs.promises; const popen = fsp.open; fsp.open = (p, ...a) => { opened.push(String(p)); return popen(p, ...a); };',
    'const made = []; const mkdtemp = fs.mkdtempSync; fs.mkdtempSync = (p, ...a) => { made.push(String(p)); return mkdtemp(p, ...a); };',
    'const pmkdtemp = fsp.mkdtemp; fsp.mkdtemp = (p, ...a) => { made.push(String(p)); return pmkdtemp(p, ...a); };',
    'syncBuiltinESMExports();',
    `process.on('exit', () => fs.writeFileSync(${JSON.stringify(report)}, JSON.stringify({ modules: process.moduleLoadList, opened, made })));`,
  ].join('\n'));
  assert.match(stderr, /\(0 steps run, \d+ cached\)/);
  const { modules, opened, made } = JSON.parse(readFileSync(report, 'utf8')) as { modules: string[]; opened: string[]; made: string[] };
  assert.ok(modules.includes('NativeModule net'), 'the report lists what was loaded');
  assert.ok(!modules.includes('NativeModule tls'), 'node:tls was loaded');
  assert.ok(!modules.includes('NativeModule http2'), 'node:http2 was loaded');
  // Nothing runs, compresses or starts a worker: scripts/build.mjs makes these load on first use,
  // node:assert only when one of undici's own assertions fails; undici gets no node:http, and the
  // small things a cached build hashes are hashed in JavaScript (src/oci/sha256.ts).
  for (const unused of ['child_process', 'zlib', 'worker_threads', 'assert', 'http', 'crypto']) assert.ok(!modules.includes(`NativeModule ${unused}`), `node:${unused} was loaded`);
  assert.ok(opened.some((p) => p.endsWith('sums.json')), 'the list checksums were read');
  assert.deepEqual(opened.filter((p) => p.endsWith('hashes.json') || p.startsWith(join(ctx, 'f'))), [], 'a cached COPY read the per-file index or a context file');
  assert.deepEqual(made, [], 'a cached build made a scratch dir');
});

test('dist/cli.js: a code cache per command, used by the next run, made again when V8 refuses it, earlier ones removed', { skip: existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-codecache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, NODE_COMPILE_CACHE: dir } });
  const hash = createHash('sha256').update(readFileSync(join(projectDir, 'dist/cli-main.cjs'))).digest('hex').slice(0, 16);
  const cacheOf = (command: string) => join(dir, `cli-${hash}-${process.version}-${process.arch}-${command}.bin`);
  const stale = join(dir, 'cli-0123456789abcdef-v0.0.0-x64-build.bin'); // an earlier bundle's
  writeFileSync(stale, 'old');
  assert.match((await run('--version')).stdout, /^slipway \d/);
  assert.ok(statSync(cacheOf('other')).size > 100_000, 'the first run made the cache, after running');
  assert.ok(!existsSync(stale), 'an earlier bundle\'s cache is removed when a new one is made');
  const made = statSync(cacheOf('other')).mtimeMs;
  await new Promise((r) => setTimeout(r, 20));
  assert.match((await run('--version')).stdout, /^slipway \d/);
  assert.equal(statSync(cacheOf('other')).mtimeMs, made, 'the second run took the cache as it was');
  writeFileSync(cacheOf('other'), 'not a code cache');
  assert.match((await run('--version')).stdout, /^slipway \d/);
  assert.ok(statSync(cacheOf('other')).size > 100_000, 'a refused cache is made again');
  assert.match((await run('build', '--help')).stdout, /--cache-dir/);
  assert.ok(existsSync(cacheOf('build')), 'each command has its own');
});

test('the bundles are ASCII: dist/cli.js reads its bundle as latin1, and V8 keeps each at one byte a character', { skip: existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)' }, () => {
  for (const file of ['dist/cli-main.cjs', 'dist/action/main.js', 'dist/action/post.js']) {
    const bytes = readFileSync(join(projectDir, file));
    const at = bytes.findIndex((b) => b > 0x7f);
    assert.equal(at, -1, `${file} has a non-ASCII byte at ${at}: ${bytes.subarray(Math.max(0, at - 40), at + 10).toString()}`);
  }
});

test('a rebuild whose only miss is a COPY after the RUN steps starts no process (no runtime, no mount probe)', { skip: skip ?? runMissing() }, async (t) => {
  const { dir, ctx, build } = await workspace(t, { Dockerfile: 'FROM BASE\nRUN echo ran > /ran\nCOPY last.txt /last.txt\n', 'last.txt': 'one\n' });
  const report = join(dir, 'spawned.json');
  const hook = [
    "import cp from 'node:child_process'; import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';",
    'const spawned = [];',
    "for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync']) { const f = cp[name]; cp[name] = (file, ...rest) => { spawned.push(String(file)); return f(file, ...rest); }; }",
    'syncBuiltinESMExports();',
    `process.on('exit', () => fs.writeFileSync(${JSON.stringify(report)}, JSON.stringify(spawned)));`,
  ].join('\n');
  await build(hook);
  assert.ok((JSON.parse(readFileSync(report, 'utf8')) as string[]).length > 0, 'the first build ran its RUN step through processes');
  writeFileSync(join(ctx, 'last.txt'), 'two\n');
  const { stderr } = await build(hook);
  assert.match(stderr, /\(1 steps? run, \d+ cached\)/);
  assert.deepEqual(JSON.parse(readFileSync(report, 'utf8')), []);
});

test('a build with RUN steps spawns nothing from its own process but resident shells (the isolation probe and crun\'s version go through them)', { skip: skip ?? runMissing() }, async (t) => {
  const { dir, build } = await workspace(t, { Dockerfile: 'FROM BASE\nRUN echo one > /one\nRUN echo two > /two\n' });
  const report = join(dir, 'spawned.json');
  await build([
    "import cp from 'node:child_process'; import fs from 'node:fs'; import { syncBuiltinESMExports } from 'node:module';",
    'const spawned = [];',
    "for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync']) { const f = cp[name]; cp[name] = (file, args, ...rest) => { spawned.push([file, ...(Array.isArray(args) ? args : [])].join(' ')); return f(file, args, ...rest); }; }",
    'syncBuiltinESMExports();',
    `process.on('exit', () => fs.writeFileSync(${JSON.stringify(report)}, JSON.stringify(spawned)));`,
  ].join('\n'));
  const spawned = JSON.parse(readFileSync(report, 'utf8')) as string[];
  assert.ok(spawned.length > 0 && spawned.every((s) => s === 'sh -s'), spawned.join(', '));
});

test('dist/cli.js does not optimise WebAssembly (the exit would wait for llhttp\'s compile); a tiering budget given to node is left alone', { skip: skip ?? runMissing() }, async (t) => {
  // Pulling the base parses enough responses for V8 to optimise llhttp by default; the RUN step's
  // second gives that compile time to end and be traced (V8 traces to stdout).
  const { build } = await workspace(t, { Dockerfile: 'FROM BASE\nRUN sleep 1\n' });
  const tiers = (stdout: string) => new Set([...stdout.matchAll(/Compiled function \S+ using (\w+)/g)].map((m) => m[1]));
  const own = await build(undefined, ['--trace-wasm-compilation-times']);
  assert.deepEqual([...tiers(own.stdout)], ['Liftoff'], 'llhttp ran in baseline code only');
  const given = await build(undefined, ['--trace-wasm-compilation-times', '--wasm-tiering-budget=1'], ['--no-cache']);
  assert.ok(tiers(given.stdout).has('TurboFan'), `with the user's budget llhttp is optimised: ${[...tiers(given.stdout)].join(', ')}`);
});

test('dist/cli.js keeps the young generation at its starting size through a COPY of 20,000 files; NODE_OPTIONS can say otherwise', { skip: existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-young-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = join(dir, 'ctx');
  for (let d = 0; d < 20; d++) {
    mkdirSync(join(ctx, `d${d}`), { recursive: true });
    for (let f = 0; f < 1000; f++) writeFileSync(join(ctx, `d${d}`, `f${f}.txt`), `file ${d} ${f}\n`);
  }
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app/\n');
  const report = join(dir, 'young.json');
  // The largest the young generation was after any collection, and at the end.
  writeFileSync(join(dir, 'hook.mjs'), [
    "import v8 from 'node:v8'; import fs from 'node:fs'; import { PerformanceObserver } from 'node:perf_hooks';",
    "let max = 0; const look = () => { max = Math.max(max, v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size); };",
    "new PerformanceObserver(look).observe({ entryTypes: ['gc'] });",
    `process.on('exit', () => { look(); fs.writeFileSync(${JSON.stringify(report)}, String(max)); });`,
  ].join('\n'));
  const youngest = async (nodeOptions: string) => {
    rmSync(join(dir, 'cache'), { recursive: true, force: true });
    await promisify(execFile)(process.execPath, ['--import', join(dir, 'hook.mjs'), cli, 'build', '--progress', 'plain', '--cache-dir', join(dir, 'cache'), '-f', join(dir, 'Dockerfile'),
      '--output', `type=oci,dest=${join(dir, 'out.tar')}`, ctx], { env: { ...process.env, NODE_OPTIONS: nodeOptions, NODE_COMPILE_CACHE: join(dir, 'compile-cache') } });
    return Number(readFileSync(report, 'utf8'));
  };
  const small = await youngest('');
  assert.ok(small <= 8 << 20, `the young generation grew to ${small >> 20} MiB`);
  const given = await youngest('--max-semi-space-size=16');
  assert.ok(given > small, `with --max-semi-space-size=16 in NODE_OPTIONS it stayed at ${given >> 20} MiB`);
});

test('dist/cli.js: a build given --cache-dir keeps its code cache there (CI keeps that dir between jobs); a build that made no cache dir makes none for it', { skip: existsSync(cli) ? undefined : 'dist/cli.js is not built (npm run build)' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-cc-dir-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const ctx = join(dir, 'ctx');
  mkdirSync(ctx);
  writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
  writeFileSync(join(ctx, 'a.txt'), 'a\n');
  const home = join(dir, 'home');
  mkdirSync(home);
  const env = { ...process.env, HOME: home, XDG_CACHE_HOME: '', NODE_COMPILE_CACHE: '' };
  const build = (...args: string[]) => promisify(execFile)(process.execPath, [cli, 'build', '--progress', 'quiet', ...args], { env, cwd: dir });
  const hash = createHash('sha256').update(readFileSync(join(projectDir, 'dist/cli-main.cjs'))).digest('hex').slice(0, 16);
  const cacheFile = join(dir, 'cache', 'compile-cache', `cli-${hash}-${process.version}-${process.arch}-build.bin`);
  await build('--cache-dir', 'cache', '-o', `type=oci,dest=${join(dir, 'a.tar')}`, ctx); // relative to the working directory, as the build takes it
  assert.ok(statSync(cacheFile).size > 100_000, 'the code cache is in the cache dir');
  assert.ok(!existsSync(join(home, '.cache', 'slipway-compile-cache')), 'and not in the home directory');
  const made = statSync(cacheFile).mtimeMs;
  await new Promise((r) => setTimeout(r, 20));
  await build(`--cache-dir=${join(dir, 'cache')}`, '-o', `type=oci,dest=${join(dir, 'b.tar')}`, ctx);
  assert.equal(statSync(cacheFile).mtimeMs, made, 'the next build took it as it was');
  await assert.rejects(build('--cache-dir', join(dir, 'never'), '--no-such-flag', ctx));
  assert.ok(!existsSync(join(dir, 'never')), 'a build that failed on its flags made no cache dir');
});
