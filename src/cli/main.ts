#!/usr/bin/env node
/**
 * cli: the `slipway` command line. Turns flags into typed requests for the engine and prints
 * progress and results. Every sub-command lives in its own module and is listed here.
 */
import { describeError } from '../errors.ts';
import type { Command, CommandIO } from './command.ts';
import { constants as osConstants } from 'node:os';
import { InterruptedError, version } from '../launch/index.ts';
import { nearest } from '../suggest.ts';
import { inspectCommand } from './inspect.ts';
import { copyCommand } from './copy.ts';
import { buildCommand } from './build.ts';
import { cacheCommand } from './cache.ts';
import { imagetoolsCommand } from './imagetools.ts';
import { mutateCommand } from './mutate.ts';
import { appendCommand } from './append.ts';

const commands: Command[] = [buildCommand, inspectCommand, copyCommand, imagetoolsCommand, mutateCommand, appendCommand, cacheCommand];

function usage(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 7);
  return [
    'Usage: slipway COMMAND [OPTIONS]',
    '',
    'Build OCI container images from a Dockerfile, without a Docker daemon.',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    `  ${'help'.padEnd(width)}  Show the options of a command (slipway help build)`,
    `  ${'version'.padEnd(width)}  Print the version (also -v, --version)`,
    '',
    "Run 'slipway COMMAND --help' for a command's options.",
  ].join('\n');
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === 'help' && rest.length > 0) return main([rest[0], '--help'], io);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(usage() + '\n');
    return name === undefined ? 2 : 0;
  }
  if (name === 'version' || name === '--version' || name === '-v' || name === '-V') {
    io.stdout.write(`slipway ${version}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const guess = nearest(name, [...commands.map((c) => c.name), 'version', 'help']);
    io.stderr.write(`error: unknown command "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.help.trimEnd() + '\n');
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    io.stderr.write(`error: ${describeError(err)}\n`);
    if (process.env.SLIPWAY_DEBUG && err instanceof Error) io.stderr.write(`${err.stack}\n`);
    // As shells report a process ended by a signal: 130 for Ctrl-C, 143 for a CI job's SIGTERM.
    return err instanceof InterruptedError ? 128 + (osConstants.signals[err.signal] ?? 2) : 1;
  }
}

/** The command as a process runs it: its arguments, its streams, its exit code. */
export async function runAsProcess(): Promise<void> {
  // Once a pipe we write to is closed nothing more can be said there: what is left to write (the
  // build's error, its summary) goes nowhere rather than ending the process before it cleans up.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE') throw e; });
  process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTTY: Boolean(process.stderr.isTTY) });
}

if (import.meta.main) await runAsProcess();
