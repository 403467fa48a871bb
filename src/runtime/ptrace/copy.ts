// Private copies for what proot cannot bind read-only: a file or tree with its modes, owners and
// times, in plain Node (no GNU cp needed in the container).
import { chmodSync, constants as fsConstants, copyFileSync, lchownSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A private copy of a host file or directory for a read-only bind: contents, modes, owners and times
 * (files are cloned where the filesystem can). Plain Node, so it needs no GNU cp in the container.
 */
export function privateCopy(source: string, dest: string): void {
  const st = lstatSync(source);
  if (st.isDirectory()) {
    mkdirSync(dest);
    for (const name of readdirSync(source)) privateCopy(join(source, name), join(dest, name));
    chmodSync(dest, st.mode & 0o7777);
  } else if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(source), dest);
  } else if (st.isFile()) {
    copyFileSync(source, dest, fsConstants.COPYFILE_FICLONE);
    chmodSync(dest, st.mode & 0o7777);
  } else {
    return; // sockets, fifos and devices are not copied
  }
  if (process.geteuid?.() === 0) lchownSync(dest, st.uid, st.gid);
  if (!st.isSymbolicLink()) utimesSync(dest, st.atime, st.mtime);
}

