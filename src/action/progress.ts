// Build progress as GitHub Actions log groups: one group per step. Stages of a build run in
// parallel, so two steps' output would interleave inside whichever group is open. Each step's
// output is therefore buffered and its whole group printed in one write when the step ends (a group
// title carries the outcome and time). Output of a RUN step comes from the Dockerfile, which may be
// untrusted: it is fenced with `::stop-commands::` so a line like `::add-mask::` or `::error::` in it
// is shown, not obeyed.
import { randomBytes } from 'node:crypto';
import { relative } from 'node:path';
import type { CheckWarning } from '../checks/index.ts';
import type { Progress } from '../engine/index.ts';

/** Most bytes of one step's output kept for its group; beyond this the oldest part is dropped. */
export const stepOutputLimit = 8 << 20;

/** `::` command data escaping, as the runner expects in a group title or annotation. */
export function escapeData(text: string): string {
  return text.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export interface GroupedOptions {
  now?: () => number;
  warn?: (message: string) => void;
  /** Build checks become annotations on the Dockerfile named relative to this directory (the workspace). */
  workspace?: string;
}

export function groupedProgress(write: (text: string) => void, opts: GroupedOptions = {}): Progress {
  const now = opts.now ?? (() => performance.now());
  return {
    step(title) {
      const start = now();
      const chunks: Buffer[] = [];
      let kept = 0;
      let dropped = 0;
      let closed = false;
      const close = (status: string, tail?: string): void => {
        if (closed) return;
        closed = true;
        let text = `::group::${escapeData(`${title}  ${status}`)}\n`;
        if (chunks.length > 0 || dropped > 0) {
          const token = randomBytes(12).toString('hex');
          let body = Buffer.concat(chunks).toString('utf8');
          if (dropped > 0) body = `[${dropped} bytes of earlier output not shown]\n${body}`;
          if (!body.endsWith('\n')) body += '\n';
          text += `::stop-commands::${token}\n${body}::${token}::\n`;
        }
        if (tail) text += tail;
        text += '::endgroup::\n';
        write(text);
      };
      const seconds = (): string => `${((now() - start) / 1000).toFixed(1)}s`;
      return {
        log(chunk) {
          chunks.push(chunk);
          kept += chunk.length;
          while (kept > stepOutputLimit && chunks.length > 1) {
            const first = chunks.shift()!;
            kept -= first.length;
            dropped += first.length;
          }
        },
        cached() {
          close('CACHED');
        },
        done() {
          close(`DONE ${seconds()}`);
        },
        failed(err) {
          const message = err instanceof Error ? err.message : String(err);
          close(`FAILED ${seconds()}`, `${message.split('\n').map((l) => `ERROR: ${l}`).join('\n')}\n`);
        },
      };
    },
    info: (message) => write(`${message}\n`),
    warn: (message) => (opts.warn ? opts.warn(message) : write(`::warning::${escapeData(message)}\n`)),
    checks(file, warnings) {
      const shown = opts.workspace ? relative(opts.workspace, file) : file;
      for (const w of warnings) write(checkAnnotation(shown, w));
    },
  };
}

/** `::` command property escaping (file names, titles). */
export function escapeProperty(text: string): string {
  return escapeData(text).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

/** A build check's warning as a workflow annotation on the Dockerfile's line, so it shows in the diff. */
export function checkAnnotation(file: string, w: CheckWarning): string {
  const props = [`file=${escapeProperty(file)}`];
  if (w.lines) {
    props.push(`line=${w.lines.start}`);
    if (w.lines.end > w.lines.start) props.push(`endLine=${w.lines.end}`);
  }
  props.push(`title=${escapeProperty(w.rule)}`);
  return `::warning ${props.join(',')}::${escapeData(w.message)}\n`;
}
