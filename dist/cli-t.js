#!/usr/bin/env node
// The `slipway` command (written to dist/cli.js by scripts/build.mjs): runs the bundle
// (dist/cli-main.cjs) through V8's code cache. Node's own compile cache keeps only what V8 compiles
// before the code runs — a quarter of it; this cache is made after a first run of each command, so
// it holds the functions that run compiled too, and later runs parse and compile nothing.
// V8 refuses a cache made by another V8 or with other flags (then it is made again); it is named by
// the bundle's content hash, as V8 checks only the source's length. It lives beside slipway's
// default cache dir (NODE_COMPILE_CACHE names another), never in the temp dir, which a build
// leaves clean; any failure to read or write it costs only speed.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';

const bundleHash = 'd3697dc8eddb689f';
const bundle = join(dirname(fileURLToPath(import.meta.url)), 'cli-main.cjs');
const xdg = process.env.XDG_CACHE_HOME;
const dir = process.env.NODE_COMPILE_CACHE || join(xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME || homedir(), '.cache'), 'slipway-compile-cache');
// One cache per command: each holds what its own runs compile.
const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
const cacheFile = join(dir, `cli-${bundleHash}-${process.version}-${process.arch}-${command}.bin`);

const T=[['start',performance.now()]];
let cachedData;
try { cachedData = readFileSync(cacheFile); } catch { /* first run of this command */ }
T.push(['cacheRead',performance.now()]);
const src=readFileSync(bundle, 'utf8'); T.push(['srcRead',performance.now()]);
// The CommonJS wrapper on the first line: stack traces keep the bundle's line numbers.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${src}\n})`, {
  filename: bundle, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
T.push(['compiled',performance.now()]);
const main = { exports: {} };
script.runInThisContext()(main.exports, createRequire(bundle), main, bundle, dirname(bundle));
// V8 sizes the young generation from the machine's memory (64 MiB semi-spaces with 16 GiB or
// more), and a COPY of many files keeps its entries alive through scavenges, which is what grows
// it: a 200,000-file COPY peaked at 390 MB, 130 MB of it young generation. So the young generation
// stays at its starting size while the command runs (as --max-semi-space-size=1 would; a flag
// given in NODE_OPTIONS wins). Flag values are part of every code cache check, Node's built-in
// modules' included: the bundle is loaded first, and the built-ins a build loads later are loaded
// here, so that nothing compiles without its cache; the flag goes back before this cache is made.
const youngFlags = /--(max|min)-semi-space-size|--semi-space-growth-factor/;
const smallYoung = !youngFlags.test(`${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`);
T.push(['evaluated',performance.now()]);
if (smallYoung) {
  void performance.now(); // loads perf_hooks
  void createRequire(import.meta.url)('node:util').parseArgs; // loaded on first use
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
T.push(['main',performance.now()]);
await main.exports.runAsProcess();
T.push(['done',performance.now()]); process.stderr.write('T ' + T.map(([k,v])=>k+'='+v.toFixed(1)).join(' ') + ' rejected=' + script.cachedDataRejected + '\n');
if (smallYoung) v8.setFlagsFromString('--semi-space-growth-factor=2');
if (!cachedData || script.cachedDataRejected) {
  try {
    mkdirSync(dir, { recursive: true });
    const temp = `${cacheFile}.${process.pid}`;
    writeFileSync(temp, script.createCachedData());
    renameSync(temp, cacheFile);
    // Caches of other bundles (earlier slipway versions) are of no use any more.
    for (const name of readdirSync(dir)) if (name.startsWith('cli-') && !name.startsWith(`cli-${bundleHash}-`)) rmSync(join(dir, name), { force: true });
  } catch { /* read-only home: no cache */ }
}
// Everything is written (stdout and stderr are synchronous on Linux; elsewhere, wait for them):
// exit now rather than wait for Node to tear the heap down piece by piece.
if (!process.stdout.writableLength && !process.stderr.writableLength) process.exit();
