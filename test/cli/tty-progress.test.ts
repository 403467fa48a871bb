import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ttyProgress } from '../../src/cli/tty-progress.ts';

/** A tiny terminal: applies the escape codes the view uses (cursor up, clear line) to a screen. */
function terminal() {
  const screen: string[] = [];
  let row = 0;
  const stream = new Writable({
    write(chunk, _enc, cb) {
      const text = chunk.toString();
      let i = 0;
      while (i < text.length) {
        const m = /^\x1b\[(\d*)([AK])/.exec(text.slice(i));
        if (m) {
          if (m[2] === 'A') row -= Number(m[1] || 1);
          else screen[row] = '';
          i += m[0].length;
        } else if (text[i] === '\n') { row++; i++; }
        else { screen[row] = (screen[row] ?? '') + text[i]; i++; }
      }
      cb();
    },
  }) as Writable & { columns: number };
  stream.columns = 80;
  return { stream, screen: () => screen.filter((l) => l !== undefined && l !== '') };
}

test('tty progress: finished steps stay as one line each, running steps show their last output line', () => {
  let t = 0;
  const term = terminal();
  const p = ttyProgress(term.stream, () => t);
  const a = p.step('[1/3] COPY . /app');
  const b = p.step('[2/3] RUN make');
  b.log(Buffer.from('compiling\nlinking\n'));
  t = 1500;
  a.done();
  assert.deepEqual(term.screen(), ['=> [1/3] COPY . /app 1.5s', '=> [2/3] RUN make 1.5s', '   linking']);
  const c = p.step('[3/3] RUN test');
  c.cached();
  t = 4000;
  b.failed(new Error('exit code: 2\nmore'));
  p.stop();
  assert.deepEqual(term.screen(), ['=> [1/3] COPY . /app 1.5s', '=> [3/3] RUN test CACHED', '=> [2/3] RUN make ERROR', '   exit code: 2']);
});
