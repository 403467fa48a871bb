// `npm run bench`: runs every bench/*.bench.ts in turn (or those named on the command line) and
// prints their tables. Each benchmark compares slipway with peer tools run in the same process.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename } from 'node:path';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

for (const file of files) {
  console.log(`\n### ${basename(file, '.bench.ts')}`);
  const mod = (await import(new URL(file, import.meta.url).href)) as { default: () => Promise<void> };
  await mod.default();
}
