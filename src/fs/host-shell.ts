// Host commands through resident `sh` processes: short ones (mount, umount, getfattr) and a RUN
// step's runtime. A spawn from a large Node process costs several milliseconds (fork copies its
// page tables) and a RUN step needs three; a small shell that is already running forks and execs
// them in about one. Short commands are written to a shell's stdin and their output is framed by
// NUL markers (their output is text: getfattr escapes, mount and umount print messages); a long
// one gets a shell of its own and FIFOs for its output. Where no shell can run, or one dies,
// commands are spawned directly.
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { closeSync, constants as fsConstants, createReadStream, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';

export interface HostResult { code: number; stdout: string; stderr: string }

/** Shells kept at most for short commands: steps of several stages or platforms may mount and read at once. */
const MAX_SHELLS = 2;

interface Pending { argv: string[]; resolve: (r: HostResult) => void; stdout: string; stderr: string; code?: number; outDone: boolean; errDone: boolean }

class ResidentShell {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly queue: Pending[] = [];
  private out = '';
  private err = '';
  dead = false;
  /** Running a long command (hostStart): nothing else is queued on it meanwhile. */
  long = false;

  constructor() {
    // Its own process group: a Ctrl-C at the terminal stops the build, not the shell its cleanup
    // unmounts through. It exits at the end of its stdin, when this process exits however it does.
    this.child = spawn('sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    this.child.unref();
    for (const s of [this.child.stdin, this.child.stdout, this.child.stderr]) pipe(s).unref();
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => { this.out += d; this.drain(); });
    this.child.stderr.setEncoding('utf8').on('data', (d: string) => { this.err += d; this.drain(); });
    // Spawning it failed: nothing it was given ran, so all of it runs directly.
    this.child.on('error', () => this.die(true));
    this.child.on('exit', () => this.die(false));
    this.child.stdin.on('error', () => this.die(false));
  }

  get load(): number { return this.queue.length; }

  get pid(): number | undefined { return this.child.pid; }

  /** Queues `argv` (stdout and stderr to files, e.g. FIFOs, when given). */
  run(argv: string[], to?: { stdout: string; stderr: string }): Promise<HostResult> | undefined {
    if (this.dead) return undefined;
    return new Promise<HostResult>((resolve) => {
      // Waiting on the shell keeps this process alive; an idle shell does not.
      if (!this.queue.length) pipe(this.child.stdout).ref();
      this.queue.push({ argv, resolve, stdout: '', stderr: '', outDone: false, errDone: false });
      // stdin from /dev/null: a command must not read the commands that follow it.
      const redirect = to ? ` >${quote(to.stdout)} 2>${quote(to.stderr)}` : '';
      this.child.stdin.write(`${argv.map(quote).join(' ')} </dev/null${redirect}; printf '\\000%d\\n' $?; printf '\\000' >&2\n`);
    });
  }

  /** Hands each finished command its output: stdout up to `\0<code>\n`, stderr up to `\0`. */
  private drain(): void {
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      if (!head.outDone) {
        const m = /\0(\d+)\n/.exec(this.out);
        if (m) {
          head.stdout = this.out.slice(0, m.index);
          head.code = Number(m[1]);
          head.outDone = true;
          this.out = this.out.slice(m.index + m[0].length);
        }
      }
      if (!head.errDone) {
        const i = this.err.indexOf('\0');
        if (i !== -1) {
          head.stderr = this.err.slice(0, i);
          head.errDone = true;
          this.err = this.err.slice(i + 1);
        }
      }
      if (!head.outDone || !head.errDone) return;
      this.queue.shift();
      if (!this.queue.length) pipe(this.child.stdout).unref();
      head.resolve({ code: head.code!, stdout: head.stdout, stderr: head.stderr });
    }
  }

  /**
   * The shell is gone. Never started: what was queued runs directly. Died later: a queued command
   * may have run already (a mount, say), so none is repeated; each reports the death as its failure.
   */
  private die(neverStarted: boolean): void {
    if (this.dead) return;
    this.dead = true;
    this.child.stdin.destroy();
    for (const p of this.queue.splice(0)) {
      if (neverStarted) void direct(p.argv).then(p.resolve);
      else p.resolve({ code: 127, stdout: p.stdout, stderr: 'slipway: the helper shell exited' });
    }
  }
}

const shells: ResidentShell[] = [];

/** An idle shell, else a new one; a short command may queue behind short ones (`queue`), never behind a long one. */
function pick(queue: boolean): ResidentShell | undefined {
  for (let i = shells.length - 1; i >= 0; i--) if (shells[i].dead) shells.splice(i, 1);
  const idle = shells.find((s) => s.load === 0 && !s.long);
  if (idle) return idle;
  const short = shells.filter((s) => !s.long);
  if (!queue || short.length < MAX_SHELLS) {
    try {
      const s = new ResidentShell();
      shells.push(s);
      return s;
    } catch {
      return undefined;
    }
  }
  return short.reduce((a, b) => (b.load < a.load ? b : a));
}

function direct(argv: string[]): Promise<HostResult> {
  return new Promise((resolve) => {
    execFile(argv[0], argv.slice(1), { maxBuffer: 1 << 30 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 127) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (err && !stderr ? err.message : '')) });
    });
  });
}

/**
 * Runs commands one after another on one resident shell (the second starts as soon as the first
 * ends, without a round trip through this process); each promise gives its command's exit code and
 * output, never rejects.
 */
export function hostSequence(commands: string[][]): Array<Promise<HostResult>> {
  const shell = pick(true);
  return commands.map((argv) => shell?.run(argv) ?? direct(argv));
}

export interface HostProcess {
  /** Its exit code (128+n when a signal n ended it), once its output has all been read. */
  exited: Promise<number>;
  /** Kills it and everything it started (its shell's process group). */
  kill(): void;
}

interface StartOptions { dir: string; stdout: (b: Buffer) => void; stderr: (b: Buffer) => void }

/**
 * Starts a long command (a RUN step's runtime) on a shell of its own, its stdout and stderr
 * streamed through FIFOs made in `dir`; spawned directly where no shell can run it (then `exited`
 * rejects when it cannot start).
 */
export async function hostStart(argv: string[], opts: StartOptions): Promise<HostProcess> {
  const shell = pick(false);
  if (!shell) return spawnDirect(argv, opts);
  shell.long = true;
  const fifos = { stdout: join(opts.dir, 'stdout'), stderr: join(opts.dir, 'stderr') };
  const made = await shell.run(['mkfifo', fifos.stdout, fifos.stderr]);
  if (!made || made.code !== 0) {
    shell.long = false;
    return spawnDirect(argv, opts);
  }
  // Opening a FIFO waits for its writer: the shell opens both as the command starts.
  const read = (path: string, sink: (b: Buffer) => void) => new Promise<void>((resolve) => {
    createReadStream(path).on('data', (b) => sink(b as Buffer)).on('end', resolve).on('error', () => resolve());
  });
  const streams = [read(fifos.stdout, opts.stdout), read(fifos.stderr, opts.stderr)];
  const done = shell.run(argv, fifos)!;
  return {
    exited: Promise.all([done, ...streams]).then(([r]) => {
      shell.long = false;
      return r.code;
    }),
    kill() {
      if (shell.pid !== undefined) try { process.kill(-shell.pid, 'SIGKILL'); } catch { /* gone already */ }
      // A FIFO whose writer never opened it would hold its reader's open forever: open and close
      // the writing end ourselves, so each reader sees the end of its input.
      for (const f of [fifos.stdout, fifos.stderr]) {
        try { closeSync(openSync(f, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK)); } catch { /* no reader waiting */ }
      }
    },
  };
}

function spawnDirect(argv: string[], opts: StartOptions): HostProcess {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', opts.stdout);
  child.stderr.on('data', opts.stderr);
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? osConstants.signals[sig] ?? 9 : 9)));
  });
  return { exited, kill: () => { child.kill('SIGKILL'); } };
}

/** Runs one command (see hostSequence). */
export function hostRun(argv: string[]): Promise<HostResult> {
  return hostSequence([argv])[0];
}

/** Like hostRun, but a non-zero exit rejects with an error that carries `stderr` (as execFile's). */
export async function hostExec(argv: string[]): Promise<HostResult> {
  const r = await hostRun(argv);
  if (r.code !== 0) throw Object.assign(new Error(`${argv[0]} exited with ${r.code}: ${r.stderr.trim()}`), { code: r.code, stderr: r.stderr });
  return r;
}

/** A child's stdio stream is a pipe socket, which can be (un)ref'd. */
function pipe(stream: unknown): Socket {
  return stream as Socket;
}

function quote(arg: string): string {
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}
