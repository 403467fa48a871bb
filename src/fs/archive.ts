// ADD's local archives: detect a (compressed) tar by content, as BuildKit does, and list its
// entries. gzip and zstd decompress in-process; bzip2 and xz through the `bzip2` / `xz` tools.
import { createReadStream } from 'node:fs';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../errors.ts';
import type { ContentSource, LayerEntry } from './writer.ts';
import { decompressStream } from './compress.ts';
import { readTar } from './tar.ts';
import { applyLayer } from './apply.ts';

function bytes(c: ContentSource): AsyncIterable<Buffer | Uint8Array> {
  if ('buffer' in c) return (async function* () { yield c.buffer; })();
  if ('path' in c) return createReadStream(c.path) as AsyncIterable<Buffer>;
  return c.stream();
}

async function head(c: ContentSource, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  for await (const b of bytes(c)) {
    parts.push(Buffer.from(b));
    have += b.length;
    if (have >= n) break;
  }
  return Buffer.concat(parts).subarray(0, n);
}

type Kind = 'bzip2' | 'xz' | 'other';

function kindOf(h: Buffer): Kind {
  if (h.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (h.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'other';
}

/** Decompressed bytes of an archive file, whatever its compression. */
async function* decompressed(c: ContentSource): AsyncGenerator<Buffer> {
  const kind = kindOf(await head(c, 6));
  if (kind === 'other') { yield* decompressStream(bytes(c)); return; }
  const child = spawn(kind, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number>((res) => child.on('close', (code) => res(code ?? 1)));
  const feed = Readable.from(bytes(c));
  feed.on('error', () => child.kill());
  child.stdin.on('error', () => undefined); // the tool may exit early on bad input
  feed.pipe(child.stdin);
  try {
    for await (const b of child.stdout) yield b as Buffer;
  } catch (e) {
    child.kill();
    throw e;
  } finally {
    feed.destroy();
  }
  if ((await exited) !== 0) throw new UserError(`corrupt ${kind} archive: ${stderr.trim()}`);
}

function validTarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i];
  const field = b.toString('ascii', 148, 156).replace(/[\0 ]+$/g, '').trim();
  return /^[0-7]+$/.test(field) && parseInt(field, 8) === sum && sum !== 8 * 0x20;
}

/** Whether a file is a tar archive (possibly compressed), judged by its bytes, not its name. */
export async function isArchive(c: ContentSource): Promise<boolean> {
  try {
    const parts: Buffer[] = [];
    let have = 0;
    for await (const b of decompressed(c)) {
      parts.push(b);
      have += b.length;
      if (have >= 512) break;
    }
    return validTarHeader(Buffer.concat(parts));
  } catch {
    return false;
  }
}

/**
 * The entries of an archive as layer entries (paths relative to the extraction directory).
 * Bodies up to 1 MiB stay in memory; larger ones go to a temporary directory that `cleanup` removes.
 */
export async function* archiveEntries(c: ContentSource, name: string, spill?: { dir?: string; onTemp?: (dir: string) => void }): AsyncGenerator<LayerEntry> {
  let tmp: string | undefined;
  let n = 0;
  try {
    for await (const e of readTar(decompressed(c), { emptyNames: true })) {
      const h = e.header;
      if (h.name === '') continue; // go-archive cleans it to "." and skips it
      let content: ContentSource | undefined;
      if (h.type === 'file') {
        const parts: Buffer[] = [];
        for await (const b of e.body()) parts.push(b);
        const buf = Buffer.concat(parts);
        if (buf.length <= 1 << 20) content = { buffer: buf };
        else {
          if (!tmp) { tmp = await mkdtemp(join(spill?.dir ?? tmpdir(), 'slipway-add-')); spill?.onTemp?.(tmp); }
          const p = join(tmp, String(n++));
          await writeFile(p, buf);
          content = { path: p };
        }
      }
      yield {
        path: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime,
        linkTarget: h.type === 'symlink' || h.type === 'hardlink' ? h.linkname : undefined,
        content, size: h.size, devMajor: h.devmajor, devMinor: h.devminor,
        xattrs: h.xattrs.size ? Object.fromEntries(h.xattrs) : undefined,
      };
    }
  } catch (e) {
    if (tmp && !spill?.onTemp) await rm(tmp, { recursive: true, force: true });
    if (e instanceof UserError) throw new UserError(`ADD failed: archive ${name}: ${e.message}`, { hint: e.hint });
    throw e;
  }
}

/**
 * Extracts a (compressed) tar archive file into the directory `root` (which must exist), contained
 * as a layer is: a build context given as a tarball (a URL, or `-` on standard input).
 */
export async function extractArchive(path: string, root: string, name: string): Promise<void> {
  try {
    await applyLayer(decompressed({ path }), root, { privileged: false });
  } catch (e) {
    if (e instanceof UserError) throw new UserError(`build context ${name}: ${e.message}`, { hint: e.hint });
    throw e;
  }
}
