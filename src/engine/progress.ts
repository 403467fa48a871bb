// How the engine reports what it does. The CLI prints it (plain lines like buildx's
// --progress=plain); the action turns it into log groups and the job summary.
import type { CheckWarning } from '../checks/index.ts';

export interface StepReporter {
  /** Output of the step's command, as it comes. */
  log(chunk: Buffer): void;
  /** The step's result came from the cache. */
  cached(): void;
  done(): void;
  failed(err: unknown): void;
}

export interface Progress {
  /** A new step; `title` is like `[linux/amd64 builder 2/5] RUN make`. */
  step(title: string): StepReporter;
  info(message: string): void;
  warn(message: string): void;
  /** The build checks' warnings for the Dockerfile `file` (else each goes to warn() in its short form). */
  checks?(file: string, warnings: readonly CheckWarning[]): void;
}

/** Plain text progress: `#N title`, output lines prefixed with `#N`, then `#N CACHED|DONE 1.2s`. */
export function plainProgress(write: (text: string) => void, now: () => number = () => performance.now()): Progress {
  let counter = 0;
  return {
    step(title) {
      const n = ++counter;
      const start = now();
      let pending = '';
      write(`#${n} ${title}\n`);
      const flush = (): void => {
        if (pending) write(`#${n} ${pending}\n`);
        pending = '';
      };
      return {
        log(chunk) {
          const lines = (pending + chunk.toString('utf8')).split('\n');
          pending = lines.pop() ?? '';
          for (const line of lines) write(`#${n} ${line}\n`);
        },
        cached: () => write(`#${n} CACHED\n`),
        done() {
          flush();
          write(`#${n} DONE ${((now() - start) / 1000).toFixed(1)}s\n`);
        },
        failed(err) {
          flush();
          write(`#${n} ERROR: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
        },
      };
    },
    info: (message) => write(`${message}\n`),
    warn: (message) => write(`WARNING: ${message}\n`),
  };
}

/** Progress that keeps nothing (for tests and `--progress=quiet`), except warnings if asked. */
export function quietProgress(warn?: (message: string) => void): Progress {
  const step: StepReporter = { log() {}, cached() {}, done() {}, failed() {} };
  return { step: () => step, info() {}, warn: (m) => warn?.(m) };
}

/**
 * `--progress rawjson`: one JSON object per line, for scripts. Every event has `type` and `time`
 * (ISO 8601); step events carry `step` (a number, from 1) — `{"type":"step","step":1,"title":…}`
 * when it starts, `log` with `data` (its output, UTF-8), then one of `cached`, `done` (with
 * `seconds`) or `error` (with `message`); `info` and `warning` carry `message`.
 */
export function rawJsonProgress(write: (text: string) => void, now: () => number = () => performance.now(), clock: () => Date = () => new Date()): Progress {
  let counter = 0;
  const emit = (event: Record<string, unknown>) => write(JSON.stringify({ ...event, time: clock().toISOString() }) + '\n');
  return {
    step(title) {
      const step = ++counter;
      const start = now();
      emit({ type: 'step', step, title });
      return {
        log: (chunk) => emit({ type: 'log', step, data: chunk.toString('utf8') }),
        cached: () => emit({ type: 'cached', step }),
        done: () => emit({ type: 'done', step, seconds: Math.round(now() - start) / 1000 }),
        failed: (err) => emit({ type: 'error', step, message: err instanceof Error ? err.message : String(err) }),
      };
    },
    info: (message) => emit({ type: 'info', message }),
    warn: (message) => emit({ type: 'warning', message }),
  };
}
