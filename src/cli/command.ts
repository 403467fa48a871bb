// The shape of one `slipway` sub-command, and the flag parsing they share (node:util parseArgs).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UserError } from '../errors.ts';
import { nearest } from '../suggest.ts';

export interface Command {
  name: string;
  summary: string;
  /** Full `--help` text: usage line, description, flags. */
  help: string;
  run(argv: string[], io: CommandIO): Promise<number>;
}

export interface CommandIO {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  isTTY: boolean;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with errors turned into one clear UserError that points at `--help`. */
export function parseFlags<O extends Options>(command: string, argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message.replace(/\. To specify a positional argument.*$/s, '') : String(err);
    const unknown = /^Unknown option '(--?[^']+)'/.exec(msg)?.[1];
    const names = [...Object.keys(options).map((k) => `--${k}`), ...Object.values(options).flatMap((o) => (o.short ? [`-${o.short}`] : []))];
    const guess = unknown ? nearest(unknown.replace(/=.*$/, ''), names) : undefined;
    throw new UserError(`slipway ${command}: ${msg}${guess ? ` (did you mean ${guess}?)` : ''}`, { hint: `see 'slipway ${command} --help'` });
  }
}
