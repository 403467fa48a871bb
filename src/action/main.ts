// Entry of the action's main step (dist/action/main.js): see run.ts. Ends the process explicitly so
// a timer left by @actions/cache after a timed-out restore cannot hold the job (actions/toolkit#2470).
import { fileURLToPath } from 'node:url';
import { endProcess } from './cache/index.ts';
import { runMain } from './run.ts';

runMain(fileURLToPath(import.meta.url)).then(endProcess, (err: unknown) => {
  process.stdout.write(`::error::${String(err instanceof Error ? err.stack ?? err.message : err).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}\n`);
  endProcess(1);
});
