// Bundles the CLI and the action entries into dist/ with esbuild: one file each, deterministic.
// Plain JavaScript, so `npm run build` works on any Node the machine has (the bundles target 24).
import { build } from 'esbuild';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const versionSource = readFileSync(new URL('../src/launch/version.ts', import.meta.url), 'utf8');
if (!versionSource.includes(`'${pkg.version}'`)) throw new Error(`src/launch/version.ts does not say ${pkg.version} (package.json)`);

// Some bundled CommonJS dependencies call require(); give the ESM bundles one.
const banner = "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);";

// The registry transport uses undici's Agent and its request API only; undici's index loads all of
// it (fetch, websockets, caches, mocks: about half of the CLI's start-up). The transport's import
// gets just those two parts; anything else importing undici gets all of it.
const undiciDir = dirname(createRequire(import.meta.url).resolve('undici/package.json'));
const undiciParts = ['lib/dispatcher/dispatcher.js', 'lib/dispatcher/agent.js', 'lib/api/index.js'];
for (const part of undiciParts) if (!existsSync(join(undiciDir, part))) throw new Error(`undici has no ${part} any more: update the slim entry in scripts/build.mjs`);
// undici's HTTP/2 client loads node:http2 when it is evaluated (with a fallback for a Node without
// it); slipway never asks for HTTP/2 (allowH2 stays off), so it gets that fallback and start-up
// does not load http2.
// undici checks its own invariants with `assert(condition)` (node:assert, 1-2 ms of the CLI's
// start to load); it gets a function that loads node:assert only to report one that fails. Its
// sources must call assert itself, never a method of it: checked here.
const undiciAssertMethods = readdirSync(join(undiciDir, 'lib'), { recursive: true }).filter((f) => f.endsWith('.js'))
  .filter((f) => /\bassert\.\w+\(/.test(readFileSync(join(undiciDir, 'lib', f), 'utf8')));
if (undiciAssertMethods.length) throw new Error(`undici calls methods of node:assert in ${undiciAssertMethods.join(', ')}: update the slim entry in scripts/build.mjs`);
const slimUndici = {
  name: 'slim-undici',
  setup(b) {
    b.onResolve({ filter: /^node:http2$/ }, (args) => (args.importer.startsWith(undiciDir) ? { path: 'http2', namespace: 'no-http2' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'no-http2' }, () => ({ loader: 'js', contents: "throw new Error('slipway speaks HTTP/1.1 to registries');" }));
    b.onResolve({ filter: /^node:assert$/ }, (args) => (args.importer.startsWith(undiciDir) ? { path: 'assert', namespace: 'undici-assert' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'undici-assert' }, () => ({
      loader: 'js', contents: "module.exports = function assert(value, message) { if (!value) process.getBuiltinModule('node:assert')(value, message); };",
    }));
    b.onResolve({ filter: /^undici$/ }, (args) => (args.importer.endsWith(join('src', 'registry', 'transport.ts')) ? { path: 'undici', namespace: 'slim-undici' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'slim-undici' }, () => ({
      resolveDir: undiciDir,
      loader: 'js',
      contents: [
        `const Dispatcher = require('./${undiciParts[0]}');`,
        `Object.assign(Dispatcher.prototype, require('./${undiciParts[2]}'));`,
        `module.exports.Agent = require('./${undiciParts[1]}');`,
      ].join('\n'),
    }));
  },
};

// Two built-ins the CLI's undici gets in a form that loads nothing at start-up, checked after the
// build against the undici files that ask for them (a new one might read something else):
// - node:http (2-3 ms to load; nothing else in the CLI needs it). undici reads two things of it:
//   IncomingMessage, to tell a request body that is one (the CLI never sends one), and
//   maxHeaderSize, its default header limit (the transport sets its own).
// - node:crypto (7-8 ms to load; a cached build hashes in JavaScript, src/oci/sha256.ts). undici
//   takes randomInt off it for multipart boundaries: functions that load it when called.
const undiciShims = {
  'node:http': { users: ['lib/core/util.js', 'lib/dispatcher/client.js'], contents: 'module.exports = { IncomingMessage: class NotSentByTheCli {}, maxHeaderSize: 16384 };' },
  'node:crypto': {
    users: ['lib/util/runtime-features.js', 'lib/web/fetch/body.js'],
    contents: "module.exports = new Proxy({}, { get: (_, key) => (...args) => process.getBuiltinModule('node:crypto')[key](...args) });",
  },
};
const undiciShimUsers = new Map(Object.keys(undiciShims).map((id) => [id, new Set()]));
const undiciCliBuiltins = {
  name: 'undici-cli-builtins',
  setup(b) {
    b.onResolve({ filter: /^node:(http|crypto)$/ }, (args) => {
      if (!args.importer.startsWith(undiciDir)) return undefined;
      undiciShimUsers.get(args.path).add(args.importer.slice(undiciDir.length + 1));
      return { path: args.path, namespace: 'undici-cli-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'undici-cli-builtin' }, (args) => ({ loader: 'js', contents: undiciShims[args.path].contents }));
  },
};

const common = { plugins: [slimUndici], bundle: true, platform: 'node', target: 'node24', legalComments: 'none', sourcemap: false, minify: false, logLevel: 'warning' };
// The actions: ESM, as `runs.using: node24` loads them.
await build({ ...common, entryPoints: { 'action/main': 'src/action/main.ts', 'action/post': 'src/action/post.ts' }, outdir: 'dist', format: 'esm', banner: { js: banner } });
// The CLI's bundle: CommonJS, so that dist/cli.js can run it through V8's code cache (vm.Script);
// `import.meta.main` (src/cli/main.ts run directly) is false in it.
await build({ ...common, plugins: [undiciCliBuiltins, ...common.plugins], entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli-main.cjs', format: 'cjs', define: { 'import.meta.main': 'false' } });
for (const [id, { users }] of Object.entries(undiciShims)) {
  const found = [...undiciShimUsers.get(id)].sort().join(', ');
  if (found !== users.join(', ')) throw new Error(`undici's ${id} importers are ${found}, not ${users.join(', ')}: check what they read of it, then update undiciShims in scripts/build.mjs`);
}

// The bundle runs inside a function wrapper (dist/cli.js): no `#!` line (src/cli/main.ts has one).
const bundleFile = new URL('../dist/cli-main.cjs', import.meta.url);
writeFileSync(bundleFile, lazyBuiltins(readFileSync(bundleFile, 'utf8').replace(/^#![^\n]*\n/, '')), { mode: 0o644 });

/**
 * Built-in modules a cached build never uses load when first used, not as the CLI starts
 * (child_process, zlib, worker_threads, crypto: 10 ms of a 0.1-0.2 s rebuild). esbuild writes each import of
 * one in our sources as a top-level `var import_x = require("node:x");` (a namespace import wrapped
 * in `__toESM(…, 1)`); that becomes an object whose first property read requires the module. Our
 * sources only read functions and constants off these imports; undici's own requires (indented,
 * inside its module wrappers) stay as they are.
 */
function lazyBuiltins(bundle) {
  const strict = '"use strict";\n';
  if (!bundle.startsWith(strict)) throw new Error('the CLI bundle no longer starts with "use strict": update lazyBuiltins in scripts/build.mjs');
  const helper = 'var __lazyBuiltin = (id) => { let m; return new Proxy({}, { get: (_, key) => (m ??= require(id))[key] }); };\n';
  const imports = /^var (\w+) = (?:require\("(node:(?:child_process|zlib|worker_threads|crypto))"\)|__toESM\(require\("(node:zlib)"\), 1\));$/gm;
  let count = 0;
  const out = bundle.replace(imports, (_, name, id, namespaced) => { count++; return `var ${name} = __lazyBuiltin("${id ?? namespaced}");`; });
  if (count < 10) throw new Error(`lazyBuiltins in scripts/build.mjs found ${count} imports of child_process, zlib, worker_threads and crypto: has esbuild's output changed?`);
  return strict + helper + out.slice(strict.length);
}

// Every bundle ASCII only: V8 then holds its source as one byte a character, not two, and
// dist/cli.js reads it as latin1 without decoding UTF-8 (a 1.3 MB bundle: 2 ms less to read,
// 1.5 ms less to take its code cache). esbuild escapes strings and regular expressions itself and
// leaves comments as they are; a `\u` escape means the same character wherever it stands.
for (const out of ['cli-main.cjs', 'action/main.js', 'action/post.js']) {
  const file = new URL(`../dist/${out}`, import.meta.url);
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

// dist/cli.js, the `slipway` command (scripts/cli-entry.cjs), naming its code cache after the
// bundle's content. (The bundle was dist/cli-main.js, ESM, before.) It is CommonJS, which
// dist/package.json says; the action bundles under it stay ES modules (dist/action/package.json).
rmSync(new URL('../dist/cli-main.js', import.meta.url), { force: true });
const bundleHash = createHash('sha256').update(readFileSync(bundleFile)).digest('hex').slice(0, 16);
const entry = readFileSync(new URL('./cli-entry.cjs', import.meta.url), 'utf8');
if (!entry.includes("'BUNDLE_HASH'")) throw new Error('scripts/cli-entry.cjs has no BUNDLE_HASH to fill in');
writeFileSync(new URL('../dist/package.json', import.meta.url), '{ "type": "commonjs" }\n');
writeFileSync(new URL('../dist/action/package.json', import.meta.url), '{ "type": "module" }\n');
writeFileSync(new URL('../dist/cli.js', import.meta.url), entry.replace("'BUNDLE_HASH'", `'${bundleHash}'`), { mode: 0o755 });
