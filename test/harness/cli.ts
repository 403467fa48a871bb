// The CLI run in this process, as a user runs it but with captured streams (no bundle needed).
import { execFile } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
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

const exec = promisify(execFile);
const srcCli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
/** The project's root, where relative paths such as `examples/hello` are. */
export const projectRoot = new URL('../../', import.meta.url).pathname;

/** `slipway ARGS` as its own process (src/cli/main.ts under this Node), with the exit code. */
export async function runCliProcess(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [srcCli, ...args], { cwd: opts.cwd ?? projectRoot, env: { ...process.env, ...opts.env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
