// The SSH wire encoding (RFC 4251 §5) as the agent protocol uses it: uint32, string, mpint.

export class WireReader {
  private pos = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new RangeError('truncated uint32');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  byte(): number {
    if (this.pos + 1 > this.buf.length) throw new RangeError('truncated byte');
    return this.buf[this.pos++];
  }
  string(): Buffer {
    const n = this.u32();
    if (this.pos + n > this.buf.length) throw new RangeError('truncated string');
    const s = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  text(): string {
    return this.string().toString('utf8');
  }
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

export function sshString(data: Buffer | string): Buffer {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  return Buffer.concat([u32(b.length), b]);
}

/** A non-negative big-endian integer as an mpint: no leading zeros, one zero byte when the top bit is set. */
export function mpint(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return sshString(m.length > 0 && m[0] & 0x80 ? Buffer.concat([Buffer.of(0), m]) : m);
}

/** An mpint's magnitude without its sign padding, as JWK wants it. */
export function unsigned(m: Buffer): Buffer {
  let i = 0;
  while (i < m.length - 1 && m[i] === 0) i++;
  return m.subarray(i);
}
