// One build with its own registry client, stopped by SIGINT/SIGTERM or by its output going away (a
// closed pipe: `slipway build | head`, as SIGPIPE stops other tools): the steps are killed, the
// build unmounts and removes what it made, and the client closes, whatever the outcome.
import type { CheckReport } from '../checks/index.ts';
import { build, check, registryPort, type BuildResult, type Progress } from '../engine/index.ts';
import { RegistryClient, type RegistryClientOptions } from '../registry/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../errors.ts';

export async function runBuild(request: BuildRequest, deps: { progress: Progress; registry: RegistryClientOptions }): Promise<BuildResult> {
  const client = new RegistryClient(deps.registry);
  const interrupted = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => { received ??= signal; interrupted.abort(); };
  // Node ignores SIGPIPE; a write to a closed pipe is an error event on the stream instead.
  const onOutputError = (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') onSignal('SIGPIPE'); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.stdout.on('error', onOutputError);
  process.stderr.on('error', onOutputError);
  try {
    const registry = registryPort(client, { mirrors: request.mirrors, warn: (m) => deps.progress.warn(m) });
    return await build(request, { progress: deps.progress, registry, signal: interrupted.signal });
  } catch (e) {
    if (received) throw new InterruptedError(received, e);
    const full = noSpace(e);
    if (full) throw noSpaceError(full, request);
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
    process.stderr.off('error', onOutputError);
    await client.close();
  }
}

/** The build stopped because the process got `signal`; it cleaned up first. */
export class InterruptedError extends UserError {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals, cause: unknown) {
    super(`the build was interrupted (${signal}); it stopped its steps and removed what it made`, { cause });
    this.signal = signal;
  }
}

/** The build checks alone (`--check`), with a registry client for the base images. */
export async function runCheck(request: BuildRequest, deps: { registry: RegistryClientOptions }): Promise<CheckReport> {
  const client = new RegistryClient(deps.registry);
  try {
    return await check(request, { registry: registryPort(client, { mirrors: request.mirrors }) });
  } finally {
    await client.close();
  }
}

/** The ENOSPC error somewhere in `e`'s cause chain. */
function noSpace(e: unknown): NodeJS.ErrnoException | undefined {
  for (let c = e, depth = 0; c instanceof Error && depth < 8; c = c.cause, depth++) {
    if ((c as NodeJS.ErrnoException).code === 'ENOSPC') return c as NodeJS.ErrnoException;
  }
  return undefined;
}

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;

/** The filesystem holding `path` (or its nearest existing parent). */
function filesystemOf(path: string): { free: number; total: number } | undefined {
  for (let d = path; ; d = dirname(d)) {
    try {
      const s = statfsSync(d);
      return { free: s.bavail * s.bsize, total: s.blocks * s.bsize };
    } catch {
      if (d === dirname(d)) return undefined; // not there yet: its parent
    }
  }
}

/**
 * A full disk as one error: where, how much is free there, and what to do. When the failed write
 * did not say its path (a stream), the place is whichever of the build's outputs and cache dir sits
 * on the fullest filesystem.
 */
function noSpaceError(e: NodeJS.ErrnoException, request: BuildRequest): UserError {
  const candidates = [request.cacheDir, ...request.outputs.flatMap((o) => ('dest' in o ? [o.dest] : []))];
  const path = e.path ?? candidates.map((p) => ({ p, fs: filesystemOf(p) })).sort((a, b) => (a.fs?.free ?? Infinity) - (b.fs?.free ?? Infinity))[0].p;
  const fs = filesystemOf(path);
  const room = fs ? ` (${mb(fs.free)} free of ${mb(fs.total)}; the build needs more than that)` : '';
  return new UserError(`no space left on the filesystem of ${path}${room}`, {
    cause: e,
    hint: 'free space there, or put the cache (--cache-dir) or the output (-o dest=) on a larger filesystem; nothing half-written was kept: ' +
      'layers and outputs appear only when complete, and the next build with room goes on from the cache',
  });
}
