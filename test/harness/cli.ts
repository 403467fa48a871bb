// The CLI run in this process, as a user runs it but with captured streams (no bundle needed).
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.ts';

export interface CliResult { code: number; stdout: string; stdoutBytes: Buffer; stderr: string }

export async function runCli(argv: string[]): Promise<CliResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (b: Buffer) => o.push(b));
  err.on('data', (b: Buffer) => e.push(b));
  const code = await main(argv, { stdout: out, stderr: err, isTTY: false });
  const stdoutBytes = Buffer.concat(o);
  return { code, stdout: stdoutBytes.toString(), stdoutBytes, stderr: Buffer.concat(e).toString() };
}
