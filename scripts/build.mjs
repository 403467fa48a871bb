// Bundles the CLI and the action entries into dist/ with esbuild: one ESM file each, deterministic.
// Plain JavaScript, so `npm run build` works on any Node the machine has (the bundles target 24).
import { build } from 'esbuild';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const versionSource = readFileSync(new URL('../src/launch/version.ts', import.meta.url), 'utf8');
if (!versionSource.includes(`'${pkg.version}'`)) throw new Error(`src/launch/version.ts does not say ${pkg.version} (package.json)`);

// Some bundled CommonJS dependencies call require(); give the ESM bundle one.
const banner = "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);";

// The registry transport uses undici's Agent and its request API only; undici's index loads all of
// it (fetch, websockets, caches, mocks: about half of the CLI's start-up). The transport's import
// gets just those two parts; anything else importing undici gets all of it.
const undiciDir = dirname(createRequire(import.meta.url).resolve('undici/package.json'));
const undiciParts = ['lib/dispatcher/dispatcher.js', 'lib/dispatcher/agent.js', 'lib/api/index.js'];
for (const part of undiciParts) if (!existsSync(join(undiciDir, part))) throw new Error(`undici has no ${part} any more: update the slim entry in scripts/build.mjs`);
const slimUndici = {
  name: 'slim-undici',
  setup(b) {
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

await build({
  plugins: [slimUndici],
  entryPoints: { 'cli-main': 'src/cli/main.ts', 'action/main': 'src/action/main.ts', 'action/post': 'src/action/post.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  banner: { js: banner },
  legalComments: 'none',
  sourcemap: false,
  minify: false,
  logLevel: 'warning',
});

// dist/cli.js, the `slipway` command: turns on Node's compile cache, then loads the bundle — from
// the second run on, V8 reuses its compiled code instead of parsing 1 MB of JavaScript again
// (about a third of a fully cached build's start-up). The cache lives beside slipway's default
// cache dir (NODE_COMPILE_CACHE overrides), never in the temp dir, which a build leaves clean.
writeFileSync(new URL('../dist/cli.js', import.meta.url), [
  '#!/usr/bin/env node',
  "import module from 'node:module';",
  "import { homedir } from 'node:os';",
  "import { isAbsolute, join } from 'node:path';",
  'const xdg = process.env.XDG_CACHE_HOME;',
  "const base = xdg && isAbsolute(xdg) ? xdg : join(process.env.HOME || homedir(), '.cache');",
  "module.enableCompileCache?.(process.env.NODE_COMPILE_CACHE || join(base, 'slipway-compile-cache'));",
  "await (await import('./cli-main.js')).runAsProcess();",
  '',
].join('\n'), { mode: 0o755 });
