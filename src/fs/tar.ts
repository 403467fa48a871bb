// The tar codec: ustar headers with PAX extended records, written and read byte-exactly.
// We encode PAX ourselves (rather than through tar-stream) because xattr values such as
// `security.capability` are binary and tar-stream round-trips PAX values through UTF-8.
import { UserError } from '../errors.ts';

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarType;
  mode: number; // permission bits incl. setuid/setgid/sticky (0o7777)
  uid: number;
  gid: number;
  size: number; // body bytes (files only)
  mtime: number; // seconds since the epoch (integer)
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: ReadonlyMap<string, Buffer>;
}

const typeFlags: Record<TarType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

export const BLOCK = 512;

export function octal(buf: Buffer, value: number, off: number, len: number): boolean {
  const s = value.toString(8);
  if (s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
  return true;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len)), body]);
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

/** Splits a name into ustar prefix (≤155) and name (≤100); null when it can't fit. */
function splitUstar(name: string): [string, string] | null {
  if (!isAscii(name)) return null;
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    if (i <= 155 && name.length - i - 1 <= 100 && name.length - i - 1 > 0) return [name.slice(0, i), name.slice(i + 1)];
  }
  return null;
}

interface UstarFields { name: string; prefix: string; typeflag: string; size: number; linkname: string }

/** Writes the 512-byte ustar header of `h` at `offset` of `b`, with the name split and sizes as the writer decided them. */
function ustarBlock(h: TarHeader, f: UstarFields, b: Buffer, offset = 0): Buffer {
  const { name, prefix, typeflag, size, linkname } = f;
  b.fill(0, offset, offset + BLOCK);
  b.write(name, offset, 100, 'utf8');
  octal(b, h.mode & 0o7777, offset + 100, 8);
  octal(b, Math.min(h.uid, 0o7777777), offset + 108, 8);
  octal(b, Math.min(h.gid, 0o7777777), offset + 116, 8);
  octal(b, Math.min(size, 0o77777777777), offset + 124, 12);
  octal(b, Math.max(0, Math.min(h.mtime, 0o77777777777)), offset + 136, 12);
  b.write(typeflag, offset + 156, 1, 'ascii');
  b.write(linkname, offset + 157, 100, 'utf8');
  b.write('ustar\x0000', offset + 257, 8, 'binary');
  // uname/gname stay empty: numeric ids only, so the layer means the same on every host.
  if (h.type === 'char' || h.type === 'block') {
    octal(b, h.devmajor, offset + 329, 8);
    octal(b, h.devminor, offset + 337, 8);
  }
  b.write(prefix, offset + 345, 155, 'utf8');
  writeChecksum(b, offset);
  return b;
}

/** (Re)writes the checksum of the 512-byte header at `offset` of `b`, once its other fields are set. */
export function writeChecksum(b: Buffer, offset = 0): void {
  b.fill(0x20, offset + 148, offset + 156);
  let sum = 0;
  for (let i = offset; i < offset + BLOCK; i++) sum += b[i];
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', offset + 148, 8, 'ascii');
}

const headerName = (h: TarHeader): string => (h.type === 'dir' && !h.name.endsWith('/') ? h.name + '/' : h.name);

/** The ustar fields of `h` when one plain block holds it (no PAX record needed); undefined otherwise. */
function plainUstar(h: TarHeader): UstarFields | undefined {
  const size = h.type === 'file' ? h.size : 0;
  if (size > 0o77777777777 || h.uid > 0o7777777 || h.gid > 0o7777777 || h.xattrs.size > 0) return undefined;
  if (h.linkname.length > 100 || !isAscii(h.linkname)) return undefined;
  const split = splitUstar(headerName(h));
  return split ? { name: split[1], prefix: split[0], typeflag: typeFlags[h.type], size, linkname: h.linkname } : undefined;
}

/**
 * Writes the header of `h` into `target` at `offset` when it is one plain ustar block (most
 * entries are): no Buffer of its own per entry. Returns false, writing nothing, when the entry
 * needs PAX records; encodeHeader gives those.
 */
export function writePlainHeader(h: TarHeader, target: Buffer, offset: number): boolean {
  const f = plainUstar(h);
  if (!f) return false;
  ustarBlock(h, f, target, offset);
  return true;
}

/** Header block(s) for one entry: a PAX 'x' header first when a field doesn't fit ustar. */
export function encodeHeader(h: TarHeader): Buffer {
  const plain = plainUstar(h);
  if (plain) return ustarBlock(h, plain, Buffer.alloc(BLOCK));
  const name = headerName(h);
  const size = h.type === 'file' ? h.size : 0;
  const records: Buffer[] = [];
  let split = splitUstar(name);
  if (!split) {
    records.push(paxRecord('path', Buffer.from(name)));
    split = ['', Buffer.from(name).subarray(0, 100).toString('latin1').replace(/[^\x01-\x7f]/g, '_')];
  }
  let linkname = h.linkname;
  if (linkname.length > 100 || !isAscii(linkname)) {
    records.push(paxRecord('linkpath', Buffer.from(linkname)));
    linkname = '';
  }
  if (size > 0o77777777777) records.push(paxRecord('size', Buffer.from(String(size))));
  if (h.uid > 0o7777777) records.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (h.gid > 0o7777777) records.push(paxRecord('gid', Buffer.from(String(h.gid))));
  for (const key of [...h.xattrs.keys()].sort()) records.push(paxRecord('SCHILY.xattr.' + key, h.xattrs.get(key)!));
  const main = ustarBlock(h, { name: split[1], prefix: split[0], typeflag: typeFlags[h.type], size, linkname }, Buffer.alloc(BLOCK));
  const pax = Buffer.concat(records);
  const paxName = ('PaxHeaders/' + (name.replace(/\/$/, '').split('/').pop() ?? '')).slice(0, 100);
  const paxHeader = ustarBlock({ ...h, type: 'file' }, { name: Buffer.from(paxName).toString('latin1').replace(/[^\x01-\x7f]/g, '_'), prefix: '', typeflag: 'x', size: pax.length, linkname: '' }, Buffer.alloc(BLOCK));
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padding(pax.length)), main]);
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

// ---------------------------------------------------------------------------------------------
// Reading

export interface TarEntry {
  header: TarHeader;
  /** The body, to be consumed (or skipped) before asking for the next entry. */
  body(): AsyncGenerator<Buffer>;
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

export function parseNumeric(b: Buffer, off: number, len: number, what: string): number {
  if (b[off] & 0x80) {
    // GNU base-256: big-endian, first byte's top bit is the marker.
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} field out of range`);
    return v;
  }
  const s = b.toString('ascii', off, off + len).replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`${what} field is not octal: ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

export class TarFormatError extends UserError {
  constructor(message: string) {
    super(`malformed tar archive: ${message}`, { hint: 'the layer or archive is corrupt or not a tar file' });
  }
}

function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let off = 0;
  while (off < buf.length) {
    if (buf[off] === 0) break;
    const sp = buf.indexOf(0x20, off);
    if (sp === -1 || sp - off > 20) throw new TarFormatError('bad PAX record length');
    const lenStr = buf.toString('ascii', off, sp);
    if (!/^[0-9]+$/.test(lenStr)) throw new TarFormatError('bad PAX record length');
    const len = parseInt(lenStr, 10);
    if (len <= sp - off + 1 || off + len > buf.length || buf[off + len - 1] !== 0x0a) throw new TarFormatError('bad PAX record');
    const rec = buf.subarray(sp + 1, off + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq <= 0) throw new TarFormatError('bad PAX record (no key)');
    out.set(rec.toString('utf8', 0, eq), Buffer.from(rec.subarray(eq + 1)));
    off += len;
  }
  return out;
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private it: AsyncIterator<Buffer | Uint8Array | string>;
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.it = source[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<void> {
    const parts = [this.buf];
    let have = this.buf.length;
    while (have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) { this.done = true; break; }
      const c = typeof r.value === 'string' ? Buffer.from(r.value) : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      parts.push(c);
      have += c.length;
    }
    if (parts.length > 1) this.buf = Buffer.concat(parts);
  }
  /** Exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Buffer> {
    if (this.buf.length < n) await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  /** Up to n bytes (at least one unless at end), without waiting for more than is buffered. */
  async readSome(n: number): Promise<Buffer> {
    if (this.buf.length === 0) await this.fill(1);
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

const MAX_META = 16 * 1024 * 1024; // PAX / GNU long-name bodies larger than this are hostile

/** Reads a tar stream entry by entry. Unknown entry types are refused; the archive may end early only at a block boundary with end-of-archive or EOF. */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>, opts: { emptyNames?: boolean } = {}): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source);
  let pax: Map<string, Buffer> | null = null;
  let globalPax = new Map<string, Buffer>();
  let longName: string | null = null;
  let longLink: string | null = null;
  try {
    for (;;) {
      const block = await r.read(BLOCK);
      if (block.length === 0) return; // EOF without end marker: accepted, like GNU tar
      if (block.length < BLOCK) throw new TarFormatError('truncated header');
      if (block.every((x) => x === 0)) return;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
      const want = parseNumeric(block, 148, 8, 'checksum');
      if (sum !== want) throw new TarFormatError(`header checksum mismatch at entry ${JSON.stringify(cstr(block, 0, 100))}`);
      const flag = String.fromCharCode(block[156] || 0x30);
      let size = parseNumeric(block, 124, 12, 'size');
      const readMeta = async (): Promise<Buffer> => {
        if (size > MAX_META) throw new TarFormatError('extended header too large');
        const body = await r.read(size + padding(size));
        if (body.length < size + padding(size)) throw new TarFormatError('truncated extended header');
        return Buffer.from(body.subarray(0, size));
      };
      if (flag === 'x') { pax = parsePax(await readMeta()); continue; }
      if (flag === 'g') { globalPax = new Map([...globalPax, ...parsePax(await readMeta())]); continue; }
      if (flag === 'L') { longName = (await readMeta()).toString('utf8').replace(/\0.*$/s, ''); continue; }
      if (flag === 'K') { longLink = (await readMeta()).toString('utf8').replace(/\0.*$/s, ''); continue; }
      const magic = block.toString('binary', 257, 263);
      const prefix = magic === 'ustar\0' ? cstr(block, 345, 155) : '';
      let name = (prefix ? prefix + '/' : '') + cstr(block, 0, 100);
      let linkname = cstr(block, 157, 100);
      let uid = parseNumeric(block, 108, 8, 'uid');
      let gid = parseNumeric(block, 116, 8, 'gid');
      let mtime = parseNumeric(block, 136, 12, 'mtime');
      const records = new Map([...globalPax, ...(pax ?? [])]);
      const xattrs = new Map<string, Buffer>();
      for (const [k, v] of records) {
        const num = (): number => {
          const s = v.toString('ascii');
          if (!/^[0-9]+(\.[0-9]*)?$/.test(s)) throw new TarFormatError(`bad PAX ${k} value`);
          return Math.floor(Number(s));
        };
        if (k === 'path') name = v.toString('utf8');
        else if (k === 'linkpath') linkname = v.toString('utf8');
        else if (k === 'size') size = num();
        else if (k === 'uid') uid = num();
        else if (k === 'gid') gid = num();
        else if (k === 'mtime') mtime = num();
        else if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
      }
      if (longName !== null) name = longName;
      if (longLink !== null) linkname = longLink;
      pax = null; longName = null; longLink = null;
      const type = ({ '0': 'file', '\0': 'file', '7': 'file', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' } as Record<string, TarType>)[flag];
      if (!type) throw new TarFormatError(`unsupported entry type ${JSON.stringify(flag)} for ${JSON.stringify(name)}`);
      if (name.includes('\0') || (name === '' && !opts.emptyNames)) throw new TarFormatError('entry with an empty or invalid name');
      if (type === 'dir' && name.length > 1 && name.endsWith('/')) name = name.replace(/\/+$/, '');
      // Some writers put a size on links/dirs; that data is skipped, as GNU tar does.
      const bodySize = type === 'file' ? size : 0;
      const skipSize = type === 'hardlink' || type === 'symlink' ? 0 : size;
      const header: TarHeader = {
        name, type, mode: parseNumeric(block, 100, 8, 'mode') & 0o7777, uid, gid, size: bodySize, mtime, linkname,
        devmajor: type === 'char' || type === 'block' ? parseNumeric(block, 329, 8, 'devmajor') : 0,
        devminor: type === 'char' || type === 'block' ? parseNumeric(block, 337, 8, 'devminor') : 0,
        xattrs,
      };
      let remaining = skipSize;
      let consumed = false;
      const take = async (): Promise<Buffer> => {
        const chunk = await r.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw new TarFormatError(`truncated body of ${JSON.stringify(name)}`);
        remaining -= chunk.length;
        return chunk;
      };
      const body = async function* (): AsyncGenerator<Buffer> {
        if (consumed) throw new Error('tar entry body read twice');
        consumed = true;
        while (remaining > 0) {
          const chunk = await take();
          if (type === 'file') yield chunk;
        }
      };
      yield { header, body };
      while (remaining > 0) await take(); // the consumer skipped or stopped early
      const pad = padding(skipSize);
      if (pad) {
        const p = await r.read(pad);
        if (p.length < pad) throw new TarFormatError(`truncated padding after ${JSON.stringify(name)}`);
      }
    }
  } finally {
    await r.close();
  }
}
