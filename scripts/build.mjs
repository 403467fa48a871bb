// Bundles the CLI and the action entries into dist/ with esbuild: one ESM file each, deterministic.
// Plain JavaScript, so `npm run build` works on any Node the machine has (the bundles target 24).
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const versionSource = readFileSync(new URL('../src/launch/version.ts', import.meta.url), 'utf8');
if (!versionSource.includes(`'${pkg.version}'`)) throw new Error(`src/launch/version.ts does not say ${pkg.version} (package.json)`);

// Some bundled CommonJS dependencies call require(); give the ESM bundle one.
const banner = "import { createRequire as __slipwayRequire } from 'node:module'; const require = __slipwayRequire(import.meta.url);";

await build({
  entryPoints: { cli: 'src/cli/main.ts', 'action/main': 'src/action/main.ts', 'action/post': 'src/action/post.ts' },
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
