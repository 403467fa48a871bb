// The three builders the build benchmark times, each as separate processes pushing to one local
// registry: slipway's CLI, docker's BuildKit (a dockerd we start with its own data root and socket)
// and buildah (chroot isolation, its own storage root). Each can be reset to empty storage.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCommand } from '../report.ts';
import type { Workload } from './contexts.ts';

export interface BuildJob {
  workload: Workload;
  /** `HOST/REPO:TAG` to push. */
  ref: string;
  /** `--build-arg BASE=` value: the busybox fixture in the local registry. */
  base: string;
}

export interface Builder {
  name: string;
  /** Said once under the tables (how this peer was run). */
  note?: string;
  /** Empties caches and image storage (not timed). */
  fresh(): Promise<void>;
  /** Builds and pushes; returns wall seconds (and what the tool said it did). Throws when the build fails. */
  build(job: BuildJob): Promise<{ seconds: number; detail?: string }>;
  close(): Promise<void>;
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
const srcCli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const distCli = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * Runs a shell command without blocking the event loop (the registry's log is read by this
 * process: a synchronous wait would let its pipe fill and stall the registry). Fails loudly;
 * returns wall seconds and stdout.
 */
export function shell(command: string, env: NodeJS.ProcessEnv = process.env): Promise<{ seconds: number; stdout: string }> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { if (stdout.length < 1 << 20) stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve({ seconds: (performance.now() - start) / 1000, stdout });
      else reject(new Error(`${command} failed (${code}): ${(stderr || stdout).trim().slice(-2000)}`));
    });
  });
}

const timeShell = async (command: string, env?: NodeJS.ProcessEnv) => ({ seconds: (await shell(command, env)).seconds });
const sh = shell;
const quietly = (command: string) => shell(command).catch(() => undefined);

/** Lazily unmounts whatever a daemon left mounted under `dir` (deepest first), then deletes it. */
export function removeTree(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

/**
 * slipway's CLI under this Node, one cache directory per `fresh()`: `src/cli/main.ts` (type
 * stripping at start-up), or the bundled `dist/cli.js` that users run when `bundled`.
 */
export function slipwayBuilder(workDir: string, registryHost: string, opts: { cpuProfDir?: string; bundled?: boolean; isolation?: string } = {}): Builder {
  const cpuProfDir = opts.cpuProfDir;
  const isolation = opts.isolation ? `--isolation ${opts.isolation} ` : '';
  const cli = opts.bundled ? distCli : srcCli;
  let generation = 0;
  let cacheDir = '';
  const prof = cpuProfDir ? `--cpu-prof --cpu-prof-dir=${q(cpuProfDir)} ` : '';
  return {
    name: opts.isolation ? `slipway --isolation ${opts.isolation}` : 'slipway build --push',
    note: `slipway: ${opts.bundled ? 'dist/cli.js' : 'src/cli/main.ts'} build ${isolation}--cache-dir (fresh per workload) --network host --push`,
    async fresh() {
      if (cacheDir) removeTree(cacheDir);
      cacheDir = join(workDir, `slipway-cache-${opts.isolation ?? 'default'}-${++generation}`);
    },
    async build({ workload: w, ref, base }) {
      // plain progress: its closing line says how many steps ran and how many came from the cache.
      // One code cache for every workload, as an installed CLI has (else a build given a fresh
      // --cache-dir keeps its own there, and every cold row would time compiling the bundle).
      const r = await shell(`NODE_COMPILE_CACHE=${q(join(workDir, 'slipway-code-cache'))} ${q(process.execPath)} ${prof}${q(cli)} build --progress plain ${isolation}--cache-dir ${q(cacheDir)} ` +
        `--insecure-registry ${registryHost} --network host --build-arg BASE=${q(base)} -f ${q(w.dockerfile)} ` +
        `--platform ${w.platforms.join(',')} -t ${q(ref)} --push ${q(w.context)} 2>&1`);
      const steps = /\((\d+) steps? run, (\d+) cached\)/.exec(r.stdout);
      return { seconds: r.seconds, detail: steps ? `${steps[1]} run/${steps[2]} cached` : undefined };
    },
    async close() {
      if (cacheDir) removeTree(cacheDir);
    },
  };
}

/**
 * docker's BuildKit through a dockerd of our own (docker.io 20.10): `docker build` then
 * `docker push`. Without buildx it builds one platform per run, so two platforms are two builds and
 * pushes joined by `docker manifest create/push`. Returns a reason instead when it cannot start.
 */
export async function dockerBuilder(workDir: string, registryHost: string): Promise<Builder | string> {
  if (!existsSync('/usr/bin/docker') || !hasCommand('dockerd')) return 'dockerd or /usr/bin/docker not installed (Debian package docker.io)';
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  const dir = join(workDir, 'docker');
  mkdirSync(join(dir, 'config'), { recursive: true });
  writeFileSync(join(dir, 'daemon.json'), '{}\n');
  const sock = join(dir, 'docker.sock');
  const logFd = openSync(join(dir, 'dockerd.log'), 'w');
  const daemon: ChildProcess = spawn('dockerd', [
    '--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'),
    '--pidfile', join(dir, 'dockerd.pid'), '--host', `unix://${sock}`, '--iptables=false', '--bridge=none',
    '--insecure-registry', registryHost,
  ], { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  let exited = false;
  daemon.on('exit', () => { exited = true; });
  const env = { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: join(dir, 'config'), DOCKER_HOST: `unix://${sock}` };
  const docker = '/usr/bin/docker';

  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      const t = setTimeout(() => daemon.kill('SIGKILL'), 20_000);
      await gone;
      clearTimeout(t);
    }
    removeTree(dir);
  };

  const deadline = Date.now() + 60_000;
  while (await sh(`${docker} version`, env).then(() => false, () => true)) {
    if (exited || Date.now() > deadline) {
      const log = existsSync(join(dir, 'dockerd.log')) ? readFileSync(join(dir, 'dockerd.log'), 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
      await stop();
      return `dockerd did not start: ${log}`;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: 'docker BuildKit build + push',
    note: 'docker BuildKit: dockerd 20.10 (own data root), DOCKER_BUILDKIT=1 /usr/bin/docker build --network=host, then docker push; ' +
      'BuildKit pulls the busybox base over plain http from the loopback registry through --insecure-registry. ' +
      'Without buildx it cannot build two platforms at once: two-platform = one build + push per platform, then docker manifest create/push.',
    async fresh() {
      await sh(`${docker} builder prune -af >/dev/null && ${docker} image prune -af >/dev/null`, env);
    },
    async build({ workload: w, ref, base }) {
      const one = (platform: string, tag: string) => `${docker} build -q --network=host --platform ${platform} ` +
        `--build-arg BASE=${q(base)} -f ${q(w.dockerfile)} -t ${q(tag)} ${q(w.context)} && ${docker} push -q ${q(tag)}`;
      if (w.platforms.length === 1) return timeShell(one(w.platforms[0], ref), env);
      const perArch = w.platforms.map((p) => `${ref}-${p.split('/')[1]}`);
      return timeShell([
        ...w.platforms.map((p, i) => one(p, perArch[i])),
        `${docker} manifest create --insecure ${q(ref)} ${perArch.map(q).join(' ')}`,
        `${docker} manifest push --insecure --purge ${q(ref)}`,
      ].join(' && '), env);
    },
    close: stop,
  };
}

/** buildah bud (chroot isolation, --layers) then buildah push; multi-platform via --manifest. */
export async function buildahBuilder(workDir: string): Promise<Builder | string> {
  if (!hasCommand('buildah')) return 'buildah not installed (Debian package buildah)';
  if (process.getuid?.() !== 0) return 'buildah with its own storage root needs root here';
  let generation = 0;
  let root = '';
  let driver = 'overlay';
  const cmd = () => `buildah --root ${q(join(root, 'storage'))} --runroot ${q(join(root, 'run'))} --storage-driver ${driver}`;
  const fresh = async () => {
    if (root) {
      await quietly(`${cmd()} rm --all; ${cmd()} rmi --all --force`);
      removeTree(root);
    }
    root = join(workDir, `buildah-${++generation}`);
  };
  await fresh();
  // overlay needs kernel support where the storage lives; vfs always works (but copies every layer).
  try {
    await sh(`c=$(${cmd()} from scratch) && ${cmd()} rm "$c" >/dev/null`);
  } catch {
    driver = 'vfs';
    try {
      await sh(`c=$(${cmd()} from scratch) && ${cmd()} rm "$c" >/dev/null`);
    } catch (err) {
      return `buildah cannot create a container here: ${(err as Error).message.split('\n').pop()}`;
    }
  }
  return {
    name: 'buildah bud + push',
    note: `buildah: bud --isolation chroot --layers --tls-verify=false (storage driver ${driver}, own root), then buildah push; ` +
      'two-platform = bud --platform a,b --manifest, then buildah manifest push --all.',
    fresh,
    async build({ workload: w, ref, base }) {
      const bud = `${cmd()} bud -q --isolation chroot --layers --tls-verify=false --build-arg BASE=${q(base)} -f ${q(w.dockerfile)}`;
      if (w.platforms.length === 1) {
        return timeShell(`${bud} --platform ${w.platforms[0]} -t ${q(ref)} ${q(w.context)} >/dev/null && ` +
          `${cmd()} push -q --tls-verify=false ${q(ref)} ${q(`docker://${ref}`)}`);
      }
      // --manifest adds to an existing list of that name: start each build from none (not timed).
      await quietly(`${cmd()} manifest rm ${q(ref)}`);
      return timeShell(`${bud} --platform ${w.platforms.join(',')} --manifest ${q(ref)} ${q(w.context)} >/dev/null && ` +
        `${cmd()} manifest push -q --all --tls-verify=false ${q(ref)} ${q(`docker://${ref}`)}`);
    },
    async close() {
      await quietly(`${cmd()} rm --all; ${cmd()} rmi --all --force`);
      removeTree(root);
    },
  };
}
