// `npm run bench`: runs every bench/*.bench.ts in turn (or those named on the command line) and
// prints their tables, then every speed target of issue 17 that the run measured, with met/MISSED.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { basename } from 'node:path';
import { printAllTargets, small } from './report.ts';

const dir = fileURLToPath(new URL('.', import.meta.url));
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.startsWith(o)))
  .sort();

if (small) console.log('BENCH_SMALL=1: every size reduced ~20× (a smoke test of the rows; the targets hold at full size)');
for (const file of files) {
  console.log(`\n### ${basename(file, '.bench.ts')}`);
  const mod = (await import(new URL(file, import.meta.url).href)) as { default: () => Promise<void> };
  await mod.default();
}
printAllTargets();
