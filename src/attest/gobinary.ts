// The build info the Go linker embeds in an ELF binary, found while the file's bytes stream past:
// the ELF and program headers (at the start) give the file ranges of the writable, non-executable
// PT_LOAD segments, where the linker puts its 32-byte `\xff Go buildinf:` header on a 16-byte
// boundary. Go >= 1.18 writes the Go version and the module info inline after it, each a uvarint
// length and its bytes; older binaries hold two pointers instead (into data elsewhere in the file),
// which are not followed here. The module info text is framed by 16 sentinel bytes on each side.

const magic = Buffer.from('\xff Go buildinf:', 'latin1');
const headerSize = 32;
/** Go's own reader gives up on build info that does not fit 64 KiB after the header's start. */
const maxBlob = 64 * 1024;
/** The program header table must lie within this much of the file's start. */
const maxHead = 64 * 1024;

export interface GoBuildInfo {
  /** e.g. `go1.22.4`. */
  goVersion: string;
  /** The module info text (`path`, `mod`, `dep`, `=>`, `build` lines), '' when built without modules. */
  modinfo: string;
}

interface Range { start: number; end: number }

function uvarint(b: Buffer, at: number): { value: number; next: number } | undefined {
  let value = 0;
  let scale = 1;
  for (let i = at; i < b.length && i < at + 10; i++) {
    value += (b[i] & 0x7f) * scale;
    if (b[i] < 0x80) return { value, next: i + 1 };
    scale *= 128;
  }
  return undefined;
}

/** The writable, non-executable PT_LOAD file ranges of an ELF head, or undefined if it is none. */
function dataRanges(head: Buffer): Range[] | 'more' | undefined {
  if (head.length < 64) return 'more';
  if (head[0] !== 0x7f || head.toString('latin1', 1, 4) !== 'ELF') return undefined;
  const is64 = head[4] === 2;
  const le = head[5] === 1;
  if (head[4] !== 1 && !is64) return undefined;
  const u16 = (o: number) => (le ? head.readUInt16LE(o) : head.readUInt16BE(o));
  const u32 = (o: number) => (le ? head.readUInt32LE(o) : head.readUInt32BE(o));
  const word = (o: number) => (is64 ? Number(le ? head.readBigUInt64LE(o) : head.readBigUInt64BE(o)) : u32(o));
  const phoff = word(is64 ? 0x20 : 0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  const end = phoff + phentsize * phnum;
  if (phentsize < (is64 ? 56 : 32) || end > maxHead) return undefined;
  if (head.length < end) return 'more';
  const out: Range[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = u32(p);
    const flags = u32(is64 ? p + 4 : p + 24);
    const offset = word(is64 ? p + 8 : p + 4);
    const filesz = word(is64 ? p + 32 : p + 16);
    // PT_LOAD, PF_W without PF_X (as Go's reader picks the data segment).
    if (type === 1 && (flags & 3) === 2 && filesz > 0) out.push({ start: offset, end: offset + filesz });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** Decodes the blob that starts with the header; undefined if it is not (yet) complete or not valid. */
function decodeBlob(blob: Buffer, final: boolean): GoBuildInfo | 'more' | undefined {
  if (blob.length < headerSize) return final ? undefined : 'more';
  const ptrSize = blob[14];
  const flags = blob[15];
  if ((ptrSize !== 4 && ptrSize !== 8) || (flags & 2) === 0) return undefined; // pointer format: not read
  const v = uvarint(blob, headerSize);
  const m = v && v.next + v.value <= blob.length ? uvarint(blob, v.next + v.value) : undefined;
  if (!v || !m || m.next + m.value > blob.length) return final || blob.length >= maxBlob ? undefined : 'more';
  const goVersion = blob.toString('utf8', v.next, v.next + v.value);
  let modinfo = blob.toString('latin1', m.next, m.next + m.value);
  // Strip the sentinels; a text that is not framed so is no module info (as Go's reader does).
  modinfo = modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n' ? Buffer.from(modinfo.slice(16, -16), 'latin1').toString('utf8') : '';
  return goVersion ? { goVersion, modinfo } : undefined;
}

/**
 * A streaming reader: give it the file's chunks in order (`push` returns false once it needs no
 * more), then `result()`. Holds at most the ELF head, a few bytes across chunk edges and the blob.
 */
export class GoBuildInfoScanner {
  private offset = 0;
  private head: Buffer[] = [];
  private headLen = 0;
  private ranges: Range[] | undefined;
  private carry = Buffer.alloc(0);
  private carryAt = 0;
  private blob: Buffer | undefined;
  /** File offset where the segment holding the blob ends (the blob cannot run past it). */
  private blobEnd = 0;
  private blobAt = 0;
  private found: GoBuildInfo | undefined;
  private done = false;

  push(chunk: Buffer): boolean {
    if (this.done) return false;
    const at = this.offset;
    this.offset += chunk.length;
    if (this.ranges) return this.feed(chunk, at);
    this.head.push(chunk);
    this.headLen += chunk.length;
    const all = this.head.length === 1 ? chunk : Buffer.concat(this.head, this.headLen);
    const r = dataRanges(all);
    if (r === 'more') return true;
    this.head = [];
    if (!r || r.length === 0) return this.stop();
    this.ranges = r;
    return this.feed(all, 0);
  }

  private stop(): boolean {
    this.done = true;
    return false;
  }

  /** Looks at `chunk`, whose first byte is at file offset `at`. */
  private feed(chunk: Buffer, at: number): boolean {
    if (this.blob) return this.collect(chunk, at);
    const ranges = this.ranges ?? [];
    let pos = 0;
    while (ranges.length) {
      const r = ranges[0];
      if (r.end <= at + pos) { ranges.shift(); this.carry = Buffer.alloc(0); continue; }
      const from = Math.max(r.start - at, pos);
      if (from >= chunk.length) return true;
      const to = Math.min(r.end - at, chunk.length);
      const part = chunk.subarray(from, to);
      const window = this.carry.length ? Buffer.concat([this.carry, part]) : part;
      const windowAt = this.carry.length ? this.carryAt : at + from;
      for (let i = window.indexOf(magic); i !== -1; i = window.indexOf(magic, i + 1)) {
        if ((windowAt + i) % 16 !== 0) continue;
        this.blob = Buffer.alloc(0);
        this.blobAt = windowAt + i;
        this.blobEnd = r.end;
        this.carry = Buffer.alloc(0);
        const taken = this.collect(window.subarray(i), windowAt + i);
        return taken && to < chunk.length ? this.collect(chunk.subarray(to), at + to) : taken;
      }
      const keep = Math.min(window.length, magic.length - 1);
      this.carry = Buffer.from(window.subarray(window.length - keep));
      this.carryAt = windowAt + window.length - keep;
      pos = to;
    }
    return this.stop();
  }

  /** Adds the bytes of `more` (at file offset `at`) that belong to the blob, then tries to decode it. */
  private collect(more: Buffer, at: number): boolean {
    const have = this.blob ?? Buffer.alloc(0);
    const limit = Math.min(this.blobEnd, this.blobAt + maxBlob) - at;
    const add = more.subarray(0, Math.max(0, limit));
    this.blob = add.length ? Buffer.concat([have, add]) : have;
    const final = this.blobAt + this.blob.length >= Math.min(this.blobEnd, this.blobAt + maxBlob);
    const r = decodeBlob(this.blob, final);
    if (r === 'more') return true;
    this.found = r;
    return this.stop();
  }

  result(): GoBuildInfo | undefined {
    if (!this.found && this.blob && !this.done) {
      const r = decodeBlob(this.blob, true);
      if (r && r !== 'more') this.found = r;
    }
    return this.found;
  }
}
