// One write call may write less than asked (a filesystem filling up does); these loops finish the
// job or throw (ENOSPC, with the path when the caller gives one), so no blob is ever cut short.
import type { FileHandle } from 'node:fs/promises';

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
