// `--load`: a docker-archive tarball handed to the local image store — `docker load` through the
// docker CLI on PATH (which talks to whatever DOCKER_HOST / context names), else `podman load`
// where podman is what is installed (its own storage, no daemon).
// Found and checked before the build starts, so a missing daemon costs no build time.
import { spawn } from 'node:child_process';
import { UserError } from '../errors.ts';

export interface ImageLoader {
  /** The command run (`docker` or `podman`). */
  command: string;
  /** The daemon's version as its CLI reported it (podman's own, which has no daemon). */
  version: string;
}

/** How each image store tells its version: docker's from its daemon, so a stopped one shows. */
const versionArgs: Record<string, string[]> = {
  docker: ['version', '--format', '{{.Server.Version}}'],
  podman: ['version', '--format', '{{.Client.Version}}'],
};

function runCli(command: string, args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr: e.message, missing: e.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code, stdout, stderr, missing: false }));
  });
}

/** The docker CLI with a reachable daemon, else podman; one UserError that says what is missing. */
export async function findImageLoader(candidates: Array<keyof typeof versionArgs> = ['docker', 'podman']): Promise<ImageLoader> {
  const problems: string[] = [];
  for (const command of candidates) {
    const r = await runCli(command, versionArgs[command], 30_000);
    if (r.missing) continue;
    if (r.code === 0 && r.stdout.trim() !== '') return { command, version: r.stdout.trim() };
    problems.push(`${command}: ${(r.stderr.trim().split('\n').at(-1) ?? '') || `exit ${r.code}`}`);
  }
  if (problems.length === 0) {
    throw new UserError('--load needs the docker or podman CLI on PATH, and neither is installed', { hint: 'install Docker or Podman, or write the image as a file with --output type=docker,dest=image.tar' });
  }
  throw new UserError(`--load cannot reach a Docker daemon (${problems.join('; ')})`, {
    hint: 'start the daemon or set DOCKER_HOST to its socket; or write the image as a file with --output type=docker,dest=image.tar',
  });
}

/** `docker load -i FILE` (or podman's); returns what the CLI printed (e.g. `Loaded image: app:1`). */
export async function loadArchive(loader: ImageLoader, file: string): Promise<string> {
  const r = await runCli(loader.command, ['load', '-i', file], 600_000);
  if (r.code !== 0) throw new UserError(`${loader.command} load failed: ${r.stderr.trim() || `exit ${r.code}`}`);
  return r.stdout.trim();
}
