// The compact live view on a terminal (buildx's "tty" progress): finished steps scroll up as one
// line each, the running ones stay at the bottom with their time and last output line.
import type { Progress } from '../engine/index.ts';

interface Running { title: string; start: number; last: string }

const clearLine = '\x1b[2K';
const up = (n: number) => (n > 0 ? `\x1b[${n}A` : '');

export function ttyProgress(out: NodeJS.WritableStream & { columns?: number }, now: () => number = () => performance.now()): Progress & { stop(): void } {
  const running = new Set<Running>();
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const width = () => Math.max(40, (out.columns ?? 100) - 1);
  const fit = (s: string) => (s.length > width() ? s.slice(0, width() - 1) + '…' : s);
  const secs = (r: Running) => ((now() - r.start) / 1000).toFixed(1) + 's';

  const draw = (permanent: string[] = []): void => {
    let text = up(drawn);
    for (const line of permanent) text += `${clearLine}${fit(line)}\n`;
    const live = [...running].flatMap((r) => [`=> ${r.title} ${secs(r)}`, ...(r.last ? [`   ${r.last}`] : [])]);
    for (const line of live) text += `${clearLine}${fit(line)}\n`;
    // Erase what is left of the previous frame below.
    for (let i = permanent.length + live.length; i < drawn; i++) text += `${clearLine}\n`;
    const extra = Math.max(0, drawn - permanent.length - live.length);
    text += up(extra);
    drawn = live.length;
    out.write(text);
  };
  const tick = () => {
    if (running.size === 0) { clearInterval(timer); timer = undefined; return; }
    draw();
  };

  return {
    step(title) {
      const r: Running = { title, start: now(), last: '' };
      running.add(r);
      timer ??= setInterval(tick, 100);
      draw();
      const finish = (suffix: string, extra: string[] = []) => {
        running.delete(r);
        draw([`=> ${title} ${suffix}`, ...extra]);
      };
      return {
        log(chunk) {
          const lines = chunk.toString('utf8').split('\n').map((l) => l.trim()).filter(Boolean);
          if (lines.length) r.last = lines[lines.length - 1];
        },
        cached: () => finish('CACHED'),
        done: () => finish(secs(r)),
        failed: (err) => finish('ERROR', [`   ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`]),
      };
    },
    info: (message) => draw([message]),
    warn: (message) => draw([`WARNING: ${message}`]),
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
