// Entry of the action's post step (dist/action/post.js): saves the layer cache (see run.ts). A cache
// problem is a warning, never a failed job; the process ends explicitly (actions/toolkit#2470).
import { fileURLToPath } from 'node:url';
import { endProcess } from './cache/index.ts';
import { runPost } from './run.ts';

runPost(fileURLToPath(import.meta.url)).then(endProcess, (err: unknown) => {
  process.stdout.write(`::warning::Layer cache: post step failed: ${String(err instanceof Error ? err.message : err).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}\n`);
  endProcess(0);
});
