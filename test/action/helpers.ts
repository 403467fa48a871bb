// Runs the bundled action entries (dist/action/main.js, post.js) as the runner does: a fresh Node
// process per step, inputs as INPUT_<NAME> variables, and the GITHUB_OUTPUT / GITHUB_STATE /
// GITHUB_STEP_SUMMARY files, with the main step's saved state handed to post as STATE_<name>.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const repoRoot = resolve(import.meta.dirname, '../..');
export const run = promisify(execFile);

/** Rebuilds dist/ when a source file is newer than the action bundle (esbuild, ~2 s). */
export async function ensureBundle(): Promise<void> {
  const bundle = join(repoRoot, 'dist/action/main.js');
  const newest = async (): Promise<number> => {
    const { stdout } = await run('find', ['src', 'scripts', 'package.json', '-newer', bundle, '-print', '-quit'], { cwd: repoRoot });
    return stdout.trim() === '' ? 0 : 1;
  };
  let stale = true;
  try { statSync(bundle); stale = (await newest()) > 0; } catch { /* missing */ }
  if (stale) await run(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot });
}

export interface Job {
  /** The checkout (GITHUB_WORKSPACE). */
  workspace: string;
  /** RUNNER_TEMP: empty for a fresh job. */
  runnerTemp: string;
  files: { output: string; state: string; summary: string };
}

/**
 * A fresh job: a workspace filled with `files`, an empty RUNNER_TEMP and the runner's files. With
 * `like`, the job reuses that job's paths, emptied first — as a hosted runner's next job sees the
 * same paths on a clean machine (@actions/cache's entry version depends on the paths).
 */
export function newJob(files: Record<string, string>, like?: Job): Job {
  const root = like ? dirname(like.workspace) : mkdtempSync(join(tmpdir(), 'slipway-action-'));
  if (like) for (const name of readdirSync(root)) rmSync(join(root, name), { recursive: true, force: true });
  const workspace = join(root, 'workspace');
  const runnerTemp = join(root, 'runner-temp');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(workspace, name)), { recursive: true });
    writeFileSync(join(workspace, name), content);
  }
  mkdirSync(workspace, { recursive: true });
  mkdirSync(runnerTemp, { recursive: true });
  const f = { output: join(root, 'github-output'), state: join(root, 'github-state'), summary: join(root, 'step-summary') };
  for (const p of Object.values(f)) writeFileSync(p, '');
  return { workspace, runnerTemp, files: f };
}

export interface StepRun {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  /** `::warning` and `::error` commands of stdout (the annotations the runner would show). */
  warnings: string[];
  errors: string[];
}

/** The `name<<DELIM\nvalue\nDELIM` records @actions/core appends to GITHUB_OUTPUT and GITHUB_STATE. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm;
  for (const m of text.matchAll(re)) out[m[1]] = m[3];
  return out;
}

export interface StepOptions {
  inputs?: Record<string, string>;
  /** Extra environment (the cache service's variables, DOCKER_CONFIG, …). */
  env?: Record<string, string>;
  /** Kill the step (and fail) when it runs longer than this. */
  limitMs?: number;
  stdin?: string;
  /** Run the step as this user (the job's files must be theirs: see `giveJobTo`). */
  user?: { uid: number; gid: number };
}

/** Makes every file of the job belong to `user`, as a runner's checkout and temp dir do. */
export async function giveJobTo(job: Job, user: { uid: number; gid: number }): Promise<void> {
  await run('chown', ['-R', `${user.uid}:${user.gid}`, dirname(job.workspace)]);
}

/**
 * The lines of `stdout` the runner would obey as workflow commands: like the runner, skip what lies
 * between `::stop-commands::TOKEN` and `::TOKEN::`.
 */
export function workflowCommands(stdout: string): string[] {
  const out: string[] = [];
  let fence: string | undefined;
  for (const line of stdout.split('\n')) {
    if (fence !== undefined) {
      if (line === `::${fence}::`) fence = undefined;
      continue;
    }
    const m = /^::stop-commands::(.+)$/.exec(line);
    if (m) fence = m[1];
    else if (line.startsWith('::')) out.push(line);
  }
  return out;
}

/** Runs `dist/action/<entry>.js` for `job`; post gets the state main saved. */
export async function runStep(entry: 'main' | 'post', job: Job, o: StepOptions = {}): Promise<StepRun> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: job.workspace,
    RUNNER_TEMP: job.runnerTemp,
    GITHUB_OUTPUT: job.files.output,
    GITHUB_STATE: job.files.state,
    GITHUB_STEP_SUMMARY: job.files.summary,
    ...o.env,
  };
  for (const [name, value] of Object.entries(o.inputs ?? {})) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  if (entry === 'post') {
    for (const [name, value] of Object.entries(parseCommandFile(readFileSync(job.files.state, 'utf8')))) env[`STATE_${name}`] = value;
  }
  const outputsBefore = readFileSync(job.files.output, 'utf8').length;
  const summaryBefore = readFileSync(job.files.summary, 'utf8').length;
  const started = performance.now();
  const child = spawn(process.execPath, [join(repoRoot, `dist/action/${entry}.js`)], { cwd: job.workspace, env, stdio: ['pipe', 'pipe', 'pipe'], ...o.user });
  child.stdin.end(o.stdin ?? '');
  const out = child.stdout.toArray();
  const err = child.stderr.toArray();
  const limitMs = o.limitMs ?? 120_000;
  const code = await new Promise<number | null>((ok, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${entry} step still running after ${limitMs} ms`));
    }, limitMs);
    child.once('exit', (c) => { clearTimeout(timer); ok(c); });
  });
  const ms = performance.now() - started;
  const stdout = Buffer.concat(await out).toString();
  const pick = (kind: string): string[] => workflowCommands(stdout).filter((l) => l.startsWith(`::${kind}`));
  return {
    code, stdout, stderr: Buffer.concat(await err).toString(), ms,
    outputs: parseCommandFile(readFileSync(job.files.output, 'utf8').slice(outputsBefore)),
    state: parseCommandFile(readFileSync(job.files.state, 'utf8')),
    summary: readFileSync(job.files.summary, 'utf8').slice(summaryBefore),
    warnings: pick('warning'), errors: pick('error'),
  };
}
