#!/usr/bin/env node
// The `slipway` command (written to dist/cli.js by scripts/build.mjs): runs the bundle
// (dist/cli-main.cjs) through V8's code cache. Node's own compile cache keeps only what V8 compiles
// before the code runs — a quarter of it; this cache is made after a first run of each command, so
// it holds the functions that run compiled too, and later runs parse and compile nothing.
// V8 refuses a cache made by another V8 or with other flags (then it is made again); it is named by
// the bundle's content hash, as V8 checks only the source's length. It lives beside slipway's
// default cache dir, or in the `--cache-dir` a build is given (CI keeps that directory between
// jobs, rarely the home directory), or where NODE_COMPILE_CACHE says; never in the temp dir, which
// a build leaves clean. Any failure to read or write it costs only speed.
// CommonJS (dist/package.json says so): Node starts a CommonJS entry without its ES module loader
// (an empty script's first line ran at 32-36 ms against ~40 ms as an ES module, 12 runs each).
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } = require('node:fs');
const { homedir } = require('node:os');
const { dirname, isAbsolute, join, resolve } = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');

const bundleHash = '0942900687c0602d';
const bundle = join(__dirname, 'cli-main.cjs');
// One cache per command: each holds what its own runs compile.
const command = /^[a-z]+$/.test(process.argv[2] ?? '') ? process.argv[2] : 'other';
/** The build's `--cache-dir DIR` / `--cache-dir=DIR`, if one is given before any `--`. */
function buildCacheDir() {
  const args = process.argv.slice(3);
  for (let i = 0; command === 'build' && i < args.length && args[i] !== '--'; i++) {
    if (args[i] === '--cache-dir') return args[i + 1] || undefined;
    if (args[i].startsWith('--cache-dir=')) return args[i].slice('--cache-dir='.length) || undefined;
  }
  return undefined;
}
const xdg = process.env.XDG_CACHE_HOME;
const cacheDirArg = buildCacheDir();
const dir = process.env.NODE_COMPILE_CACHE || (cacheDirArg ? join(resolve(cacheDirArg), 'compile-cache')
  : join(xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME || homedir(), '.cache'), 'slipway-compile-cache'));
const cacheFile = join(dir, `cli-${bundleHash}-${process.version}-${process.arch}-${command}.bin`);

let cachedData;
try { cachedData = readFileSync(cacheFile); } catch { /* first run of this command */ }
// The CommonJS wrapper on the first line: stack traces keep the bundle's line numbers.
// latin1: the bundle is ASCII (scripts/build.mjs), so nothing is decoded.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${readFileSync(bundle, 'latin1')}\n})`, {
  filename: bundle, cachedData, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
});
const main = { exports: {} };
script.runInThisContext()(main.exports, require, main, bundle, dirname(bundle));
// Three V8 flags while the command runs, each back to its default before the code cache is made:
// - The young generation stays at the size it has once the bundle is loaded. V8 sizes it from the
//   machine's memory (64 MiB semi-spaces with 16 GiB or more), and a COPY of many files
//   keeps its entries alive through scavenges, which is what grows it: a 200,000-file COPY peaked
//   at 390 MB, 130 MB of it young generation; 256 MB with this.
// - No bytecode flushing. V8 drops the bytecode of functions that have not run for a while, and in
//   a build of some seconds that is the bundle's top level, which runs once: a cache made after
//   such a build lacks it, and every later run compiled the 1.3 MB top level again (20-25 ms).
// - WebAssembly is not tiered up. undici parses HTTP with llhttp, one large WebAssembly function;
//   after a few responses V8 starts optimising it on a background thread (75 ms of CPU here), and
//   the process cannot exit before that compile ends: every build that spoke to a registry waited
//   30-45 ms at its exit (a fully cached run-heavy build: 0.167 s median, 0.127 s with this).
//   Headers are all llhttp reads of a response (bodies pass through): baseline code is enough.
// Flag values are part of every code cache check, Node's built-in modules' included, so the flags
// are set once the bundle is loaded, after the built-ins a build loads later (nothing then compiles
// without its cache); a flag given in NODE_OPTIONS or on node's command line is left alone.
const given = `${process.env.NODE_OPTIONS ?? ''} ${process.execArgv.join(' ')}`;
const runFlags = [
  ...(/--(max|min)-semi-space-size|--semi-space-growth-factor/.test(given) ? [] : [['--semi-space-growth-factor=1', '--semi-space-growth-factor=2']]),
  ...(/--(no-)?flush-bytecode/.test(given) ? [] : [['--no-flush-bytecode', '--flush-bytecode']]),
  ...(/--wasm-tiering-budget|--(no-)?wasm-dynamic-tiering|--(no-)?liftoff/.test(given) ? [] : [['--wasm-tiering-budget=2000000000', '--wasm-tiering-budget=13000000']]),
];
void performance.now(); // loads perf_hooks
void require('node:util').parseArgs; // loaded on first use
for (const [during] of runFlags) v8.setFlagsFromString(during);
main.exports.runAsProcess().then(finish);

/** Once the command is done: the flags back, the code cache made when there was none, then exit. */
function finish() {
  for (const [, after] of runFlags) v8.setFlagsFromString(after);
  // A cache dir the build did not make (it failed before, e.g. on a bad flag) is not made for this.
  if ((!cachedData || script.cachedDataRejected) && (!cacheDirArg || process.env.NODE_COMPILE_CACHE || existsSync(resolve(cacheDirArg)))) {
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
}
