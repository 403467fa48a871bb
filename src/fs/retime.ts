// Re-timing a tar stream as it passes: every header's mtime later than an epoch is set to it
// (the checksum made again), bodies untouched — how a cached layer serves SOURCE_DATE_EPOCH builds.
import { octal, padding, parseNumeric, writeChecksum } from './tar.ts';

export async function* clampTarTimes(input: AsyncIterable<Buffer>, epoch: number): AsyncGenerator<Buffer> {
  const retime = (h: Buffer): void => {
    if (parseNumeric(h, 136, 12, 'mtime') <= epoch) return;
    octal(h, epoch, 136, 12);
    writeChecksum(h);
  };
  const padded = (n: number) => n + padding(n);
  let buf: Buffer = Buffer.alloc(0);
  let body = 0; // bytes of the current entry's data (and padding) still to pass through
  let paxSize: number | undefined; // the next entry's size from its PAX header (sizes over 8 GiB)
  let ended = false;
  for await (const chunk of input) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
    const out: Buffer[] = [];
    let off = 0;
    for (;;) {
      if (ended || body > 0) {
        const n = ended ? buf.length - off : Math.min(body, buf.length - off);
        out.push(buf.subarray(off, off + n));
        off += n;
        if (!ended) body -= n;
        if (ended || body > 0) break;
        continue;
      }
      if (buf.length - off < 512) break;
      const h = Buffer.from(buf.subarray(off, off + 512));
      if (h.every((b) => b === 0)) { out.push(h); off += 512; ended = true; continue; }
      const type = String.fromCharCode(h[156]);
      const size = parseNumeric(h, 124, 12, 'size');
      if (type === 'x' || type === 'g') {
        // PAX data is read whole: it may carry the next entry's size (and must carry no mtime).
        if (buf.length - off < 512 + padded(size)) break;
        const data = buf.subarray(off + 512, off + 512 + size).toString('utf8');
        if (/(^|\n)\d+ mtime=/.test(data)) throw new Error('the layer has PAX mtime records; it cannot be re-timed in place');
        const m = /(?:^|\n)\d+ size=(\d+)\n/.exec(data);
        if (type === 'x' && m) paxSize = Number(m[1]);
        retime(h);
        out.push(h, buf.subarray(off + 512, off + 512 + padded(size)));
        off += 512 + padded(size);
        continue;
      }
      retime(h);
      out.push(h);
      off += 512;
      body = padded(paxSize ?? size);
      paxSize = undefined;
    }
    if (out.length) yield Buffer.concat(out);
    buf = buf.subarray(off);
  }
  if (buf.length) yield buf;
}
