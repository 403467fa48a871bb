// proot's `-v 1` notes on its stderr: taken out of the step's output, with the main process's exit
// status read from its note; and the process tree under proot, to end what the step left running.
import { readdirSync, readFileSync } from 'node:fs';
import { emit, type OutputSink } from '../run.ts';

const noteLine = /proot info: [^\n]*\n/g;
const exitNote = /^proot info: v?pid (\d+): (exited with status|terminated with signal) (\d+)\n$/;
// proot prints this warning, with a newline before it, when we end it with SIGQUIT.
const quitNote = /\n?proot warning: signal 3 received from process \d+\n/g;
const notePrefixes = ['proot info: ', 'proot warning: '];

/** Where to cut `text` so that a note still being written (no newline yet) is held back. */
function holdFrom(text: string): number {
  let cut = text.length;
  for (const p of notePrefixes) {
    const i = text.lastIndexOf(p);
    if (i >= 0 && !text.includes('\n', i)) cut = Math.min(cut, i);
  }
  for (let k = Math.min(14, text.length); k > 0; k--) {
    const tail = text.slice(text.length - k);
    if (notePrefixes.some((p) => p.startsWith(tail))) {
      cut = Math.min(cut, text.length - k);
      break;
    }
  }
  // proot writes a newline of its own before its SIGQUIT warning: a newline right before what is
  // held (or at the very end) goes out only with what follows it.
  if (cut > 0 && text[cut - 1] === '\n') cut--;
  return cut;
}

/**
 * Takes proot's own notes out of the step's stderr: the start-up notes (one holds the argv, which may
 * span lines: we know its text exactly) and the per-tracee exit notes, which it reports. The step's
 * own lines that start with "proot info: " are taken out too (documented).
 */
export class NoteFilter {
  private buf = '';
  private argvNote: string | undefined;
  private readonly onExit: (pid: number, status: number) => void;
  private readonly sink: OutputSink | undefined;
  constructor(argvNote: string, onExit: (pid: number, status: number) => void, sink: OutputSink | undefined) {
    this.argvNote = argvNote;
    this.onExit = onExit;
    this.sink = sink;
  }

  push(chunk: Buffer): void {
    this.buf += chunk.toString('latin1');
    this.drain(false);
  }

  end(): void {
    this.drain(true);
  }

  private drain(final: boolean): void {
    let text = this.buf;
    let held = '';
    if (this.argvNote !== undefined) {
      const at = text.indexOf('proot info: argv = ');
      if (at >= 0) {
        const rest = text.slice(at);
        if (rest.startsWith(this.argvNote)) {
          text = text.slice(0, at) + rest.slice(this.argvNote.length);
          this.argvNote = undefined;
        } else if (!final && this.argvNote.startsWith(rest)) {
          text = text.slice(0, at);
          held = rest;
        } else {
          this.argvNote = undefined;
        }
      }
    }
    text = text.replace(quitNote, '').replace(noteLine, (line) => {
      const m = exitNote.exec(line);
      if (m) this.onExit(Number(m[1]), m[2].startsWith('exited') ? Number(m[3]) : 128 + Number(m[3]));
      return '';
    });
    const cut = final || held ? text.length : holdFrom(text);
    emit(this.sink, Buffer.from(text.slice(0, cut), 'latin1'));
    this.buf = text.slice(cut) + held;
  }
}

/** Pids of the processes traced by `tracer` (TracerPid in /proc/PID/status). */
export function tracees(tracer: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^TracerPid:\s*(\d+)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'));
      if (m && Number(m[1]) === tracer) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}

/** The real children of `pid` (from /proc/PID/task/PID/children, else by scanning for its ppid). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return [];
  }
  return childrenByScan(pid);
}

/** The real children of `pid`, found by every process's parent pid (slower, and never misses one alive). */
export function childrenByScan(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(name));
    } catch { /* gone */ }
  }
  return out;
}


export function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch { /* gone */ }
}

