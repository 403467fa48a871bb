// Shared pieces of the engine's end-to-end tests: a context directory from a map of files, a build
// through the real engine and registry client, and running a built image with runc via umoci.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { build, registryPort, type BuildResult, type Progress } from '../../src/engine/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { makeBuildRequest, type RawBuildOptions } from '../../src/request/index.ts';

export const run = promisify(execFile);

/** Why RUN tests cannot run here, or undefined. */
export function runMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'RUN steps with overlay need root';
  if (!existsSync('/usr/sbin/runc') && !existsSync('/usr/bin/runc')) return 'runc is not installed';
  return undefined;
}

export function makeContext(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'slipway-e2e-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

export interface TestBuild {
  result: BuildResult;
  log: string[];
}

/** Builds `context` with the real engine; `cacheDir` defaults to a fresh one. */
export async function buildContext(context: string, opts: Partial<RawBuildOptions> & { cacheDir?: string } = {}): Promise<TestBuild> {
  const log: string[] = [];
  const progress: Progress = {
    step(title) {
      log.push(`STEP ${title}`);
      return { log: (b) => log.push(b.toString()), cached: () => log.push(`CACHED ${title}`), done: () => log.push(`DONE ${title}`), failed: (e) => log.push(`FAILED ${title}: ${e}`) };
    },
    info: (m) => log.push(m),
    warn: (m) => log.push(`WARN ${m}`),
  };
  const request = makeBuildRequest({
    context: '.', cwd: context, env: {}, ...opts,
    cacheDir: opts.cacheDir ?? mkdtempSync(join(tmpdir(), 'slipway-cache-')),
  });
  const client = new RegistryClient({ insecureRegistries: request.insecureRegistries });
  try {
    const result = await build(request, { progress, registry: registryPort(client, { mirrors: request.mirrors, warn: progress.warn }) });
    return { result, log };
  } finally {
    await client.close();
  }
}

/** Unpacks an OCI layout tar with umoci (via skopeo) and returns the bundle dir (rootfs + config.json). */
export async function unpackOci(tarFile: string, platform?: string): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-unpack-'));
  const layout = join(work, 'layout');
  const flags = platform ? [`--override-arch=${platform.split('/')[1]}`] : [];
  await run('skopeo', [...flags, 'copy', '-q', `oci-archive:${tarFile}`, `oci:${layout}:img`]);
  await run('umoci', ['unpack', '--image', `${layout}:img`, join(work, 'bundle')]);
  return join(work, 'bundle');
}

/** Runs a umoci bundle with runc (no terminal) and returns its stdout. */
export async function runBundle(bundle: string, args?: string[]): Promise<{ stdout: string; code: number }> {
  const cfgPath = join(bundle, 'config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
  cfg.process.terminal = false;
  if (args) cfg.process.args = args;
  writeFileSync(cfgPath, JSON.stringify(cfg));
  const id = `slipway-test-${process.pid}-${Math.floor(Math.random() * 1e9)}`;
  try {
    const { stdout } = await run('runc', ['run', '--bundle', bundle, id], { timeout: 60_000 });
    return { stdout, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; code?: number };
    return { stdout: err.stdout ?? '', code: typeof err.code === 'number' ? err.code : 1 };
  } finally {
    await run('runc', ['delete', '-f', id]).catch(() => undefined);
  }
}

/** Every file of every layer in an OCI layout tar, as `path → bytes` (GNU tar reads the layers). */
export async function layerContents(tarFile: string): Promise<Buffer[]> {
  const work = mkdtempSync(join(tmpdir(), 'slipway-layers-'));
  try {
    await run('tar', ['-xf', tarFile, '-C', work]);
    const index = JSON.parse(readFileSync(join(work, 'index.json'), 'utf8'));
    const blob = (d: string) => join(work, 'blobs', ...d.split(':'));
    const out: Buffer[] = [];
    const manifests: string[] = [];
    for (const m of index.manifests) {
      const doc = JSON.parse(readFileSync(blob(m.digest), 'utf8'));
      if (doc.manifests) manifests.push(...doc.manifests.map((x: { digest: string }) => x.digest));
      else manifests.push(m.digest);
    }
    for (const md of manifests) {
      const manifest = JSON.parse(readFileSync(blob(md), 'utf8'));
      out.push(readFileSync(blob(manifest.config.digest)));
      for (const l of manifest.layers) {
        const dir = mkdtempSync(join(work, 'l-'));
        await run('tar', ['-xzf', blob(l.digest), '-C', dir]);
        const { stdout } = await run('find', [dir, '-type', 'f']);
        for (const f of stdout.split('\n').filter(Boolean)) out.push(readFileSync(f));
      }
    }
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
