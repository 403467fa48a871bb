// One write call may write less than asked (a filesystem filling up does); these loops finish the
// job or throw (ENOSPC, with the path when the caller gives one), so no blob is ever cut short;
// writeFileAtomic replaces a file whole or not at all.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function writeAll(fh: FileHandle, data: Uint8Array, path?: string): Promise<void> {
  try {
    for (let off = 0; off < data.length;) {
      const { bytesWritten } = await fh.write(data, off, data.length - off);
      off += bytesWritten;
    }
  } catch (e) {
    if (path && (e as NodeJS.ErrnoException).path === undefined) (e as NodeJS.ErrnoException).path = path;
    throw e;
  }
}

/**
 * Writes `data` (or its pieces, in order) to `file` through a temp file beside it and a rename:
 * readers see the old file or the new one.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | Iterable<string>): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await writeFile(tmp, data);
    await rename(tmp, file);
  } finally {
    await rm(tmp, { force: true });
  }
}
