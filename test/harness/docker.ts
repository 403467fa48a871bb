// Test harness: a real Docker daemon (Debian docker.io, dockerd 20.10) for tests that need one, and
// test images made from local files with `docker import` (no Docker Hub here). dockerd runs in the
// background with its own data root, exec root, pidfile and unix socket in a temp dir, without
// iptables or a bridge (containers get --network=none unless asked otherwise). One daemon per test
// process, started on first use; stop it with stopDocker() in an `after` hook.
//
// runInContainer() runs `docker run --rm` with Docker's DEFAULT settings (no --privileged, no
// --cap-add, default seccomp profile): the unprivileged container of a GitLab Docker executor or a
// Kubernetes pod. The project's Node (its real path) and the project dir are bind-mounted read-only.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, openSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** The docker.io client (/usr/local/bin/docker on these machines wants buildx). */
export const dockerClient = '/usr/bin/docker';
export const dockerd = '/usr/sbin/dockerd';
export const projectDir = realpathSync(new URL('../..', import.meta.url).pathname);
/** The project's Node 24 binary, resolved (it is a symlink into .tools/node-pkg). */
export const projectNode = realpathSync(join(projectDir, '.tools/bin/node'));
/** Top-level names under the container's /tmp that are only the binds of the project and its Node (a checkout under /tmp). */
export const projectBindsInTmp = [...new Set([projectDir, projectNode].filter((p) => p.startsWith('/tmp/')).map((p) => p.split('/')[2]))];

function installed(pkg: string): boolean {
  return spawnSync('dpkg', ['-s', pkg], { stdio: 'ignore' }).status === 0;
}

/**
 * Installs the Debian packages when missing and we are root (apt-get; the machine has the Debian
 * mirror). Returns a reason to skip when they are still missing.
 */
export function ensurePackages(pkgs: string[]): string | undefined {
  let missing = pkgs.filter((p) => !installed(p));
  if (missing.length && process.getuid?.() === 0) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { stdio: 'ignore', env, timeout: 600_000 }).status === 0;
    if (!install()) {
      spawnSync('apt-get', ['update', '-q'], { stdio: 'ignore', env, timeout: 600_000 });
      install();
    }
    missing = pkgs.filter((p) => !installed(p));
  }
  return missing.length ? `Debian packages not installed: ${missing.join(' ')} (apt-get install ${missing.join(' ')})` : undefined;
}

/** A reason to skip Docker tests here, or undefined when a daemon can be started. */
export function dockerMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  const why = ensurePackages(['docker.io']);
  if (why) return why;
  if (!existsSync(dockerd) || !existsSync(dockerClient)) return `${dockerd} or ${dockerClient} missing (apt-get install docker.io)`;
  return undefined;
}

export interface DockerDaemon {
  /** unix:///…/docker.sock, for DOCKER_HOST. */
  host: string;
  dir: string;
  /** Runs the docker client against this daemon (synchronously); throws on a non-zero exit. */
  docker(args: string[], options?: { input?: string | Buffer; timeoutMs?: number }): string;
  /** Like docker() but returns the status and both outputs instead of throwing. */
  dockerResult(args: string[], options?: { timeoutMs?: number }): { status: number | null; stdout: string; stderr: string };
}

let daemon: { d: DockerDaemon; proc: ChildProcess } | undefined;

function clientEnv(host: string): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: host, DOCKER_CONFIG: join(dirname(host.slice('unix://'.length)), 'client') };
}

/** The daemon of this test process, started on first call. */
export async function startDocker(): Promise<DockerDaemon> {
  if (daemon) return daemon.d;
  const why = dockerMissing();
  if (why) throw new Error(why);
  const dir = mkdtempSync(join(tmpdir(), 'slipway-dockerd-'));
  const sock = join(dir, 'docker.sock');
  const host = `unix://${sock}`;
  const log = openSync(join(dir, 'dockerd.log'), 'a');
  const proc = spawn(dockerd, [
    '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
    '-H', host, '--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false', '--userland-proxy=false',
  ], { stdio: ['ignore', log, log] });
  closeSync(log);
  const env = clientEnv(host);
  mkdirSync(env.DOCKER_CONFIG!, { recursive: true });
  const d: DockerDaemon = {
    host, dir,
    docker(args, options = {}) {
      return execFileSync(dockerClient, args, { env, encoding: 'utf8', input: options.input, timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 << 20 });
    },
    dockerResult(args, options = {}) {
      const r = spawnSync(dockerClient, args, { env, encoding: 'utf8', timeout: options.timeoutMs ?? 300_000, maxBuffer: 64 << 20 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`dockerd exited (${proc.exitCode}): ${readFileSync(join(dir, 'dockerd.log'), 'utf8').slice(-2000)}`);
    if (existsSync(sock) && spawnSync(dockerClient, ['version'], { env, stdio: 'ignore', timeout: 10_000 }).status === 0) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`dockerd did not come up in 60s: ${readFileSync(join(dir, 'dockerd.log'), 'utf8').slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  daemon = { d, proc };
  return d;
}

/** Stops this process's daemon (containers first) and removes its temp dir. */
export async function stopDocker(): Promise<void> {
  if (!daemon) return;
  const { d, proc } = daemon;
  daemon = undefined;
  const ids = d.dockerResult(['ps', '-aq']).stdout.split('\n').filter(Boolean);
  if (ids.length) d.dockerResult(['rm', '-f', ...ids]);
  if (proc.exitCode === null) {
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }
  // dockerd leaves its overlay mounts and the exec root's netns mounts behind only when killed; unmount what is left.
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1]).filter((m) => m?.startsWith(d.dir + '/')).reverse();
  for (const m of mounts) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  rmSync(d.dir, { recursive: true, force: true });
}

/** The shared libraries an executable loads (from ldd), as real paths, plus the names they are loaded by. */
function sharedLibs(binary: string): Array<{ path: string; real: string }> {
  const out = execFileSync('ldd', [binary], { encoding: 'utf8' });
  const libs: Array<{ path: string; real: string }> = [];
  for (const line of out.split('\n')) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push({ path: m[1], real: realpathSync(m[1]) });
  }
  return libs;
}

export interface TestImageOptions {
  tag?: string;
  /** util-linux setpriv in the image (default true); without it slipway drops privileges through Node. */
  setpriv?: boolean;
  /** proot in the image (default true); without it no RUN isolation works in a default container. */
  proot?: boolean;
}

/**
 * A tiny image made with `docker import`: busybox-static with its applets in /bin, proot with its
 * libraries, setpriv, qemu-aarch64-static, the libraries the project's Node needs (Node itself and
 * the project are bind-mounted at run time), and /tmp. Returns the tag.
 */
export function buildTestImage(d: DockerDaemon, options: TestImageOptions = {}): string {
  const tag = options.tag ?? `slipway-ptrace-test:${options.proot === false ? 'noproot' : options.setpriv === false ? 'nosetpriv' : 'latest'}`;
  if (d.dockerResult(['image', 'inspect', tag]).status === 0) return tag;
  const dir = mkdtempSync(join(tmpdir(), 'slipway-image-'));
  try {
    const root = join(dir, 'rootfs');
    const put = (host: string, inside = host) => {
      const dest = join(root, inside);
      mkdirSync(dirname(dest), { recursive: true });
      if (!existsSync(dest)) copyFileSync(realpathSync(host), dest);
      chmodSync(dest, 0o755);
    };
    mkdirSync(join(root, 'bin'), { recursive: true });
    put('/bin/busybox');
    for (const a of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n')) {
      if (a && a !== 'busybox' && !(a === 'setpriv' && options.setpriv !== false)) symlinkSync('busybox', join(root, 'bin', a));
    }
    const binaries = [...(options.proot === false ? [] : ['/usr/bin/proot']), '/usr/bin/qemu-aarch64-static', ...(options.setpriv === false ? [] : ['/usr/bin/setpriv'])];
    for (const b of binaries) put(b);
    for (const b of [...binaries.filter((b) => !b.includes('qemu')), projectNode]) {
      for (const lib of sharedLibs(b)) put(lib.real, lib.path);
    }
    mkdirSync(join(root, 'tmp'), { mode: 0o1777 });
    chmodSync(join(root, 'tmp'), 0o1777);
    for (const p of ['etc', 'root', 'proc', 'sys', 'dev']) mkdirSync(join(root, p), { recursive: true });
    execFileSync('tar', ['-C', root, '-cf', join(dir, 'rootfs.tar'), '.']);
    d.docker(['import', join(dir, 'rootfs.tar'), tag]);
    return tag;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface RunInContainerOptions {
  image: string;
  /** Extra binds, "host:container[:ro]". The project dir and the project's Node are always bound read-only. */
  binds?: string[];
  env?: Record<string, string>;
  workdir?: string;
  /** Default 'none' (the daemon has no bridge). */
  network?: string;
  timeoutMs?: number;
}

/**
 * `docker run --rm` with Docker's default privileges (no --privileged, no --cap-add, default seccomp
 * and AppArmor): the project dir and Node are bound read-only at their host paths, so
 * `runInContainer([projectNode, 'script.ts'], …)` runs our sources inside.
 */
export function runInContainer(d: DockerDaemon, cmd: string[], opts: RunInContainerOptions): { status: number | null; stdout: string; stderr: string } {
  const args = ['run', '--rm', '--network', opts.network ?? 'none',
    '-v', `${projectDir}:${projectDir}:ro`, '-v', `${projectNode}:${projectNode}:ro`];
  for (const b of opts.binds ?? []) args.push('-v', b);
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push('-e', `${k}=${v}`);
  if (opts.workdir) args.push('-w', opts.workdir);
  args.push(opts.image, ...cmd);
  return d.dockerResult(args, { timeoutMs: opts.timeoutMs ?? 300_000 });
}
