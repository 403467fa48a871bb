// The files of packages as SPDX 2.3 File elements: a listed path counts only where the final image
// has a regular file there (directory symlinks on the way are followed, as /bin -> usr/bin on a
// merged-/usr system; a path that is itself a symlink, a directory or gone is left out). Each File
// carries the SHA1 of its bytes (SPDX requires one), read from the layers; a package with files
// gets `filesAnalyzed: true`, `hasFiles` and the package verification code (SPDX 2.3 §7.9).
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { LayerView } from '../fs/index.ts';

export interface FileFacts { sha1: string }

export interface SpdxFile { fileName: string; SPDXID: string; checksums: Array<{ algorithm: 'SHA1'; checksumValue: string }> }

function fileId(path: string): string {
  return `SPDXRef-File-${createHash('sha256').update(path).digest('hex').slice(0, 16)}`;
}

/** The image path (no leading slash) a listed path leads to through directory symlinks, or undefined. */
export function resolveListed(view: LayerView<unknown>, listed: string): string | undefined {
  const parts = listed.split('/').filter((p) => p && p !== '.');
  let dir: string[] = [];
  for (let hops = 0, i = 0; i < parts.length; i++) {
    const name = parts[i];
    if (name === '..') { dir.pop(); continue; }
    const here = [...dir, name].join('/');
    const node = view.stat(here);
    if (i === parts.length - 1) return node?.type === 'file' ? here : undefined;
    // A layer may leave parent directories implicit (no entry of their own).
    if (!node) { dir.push(name); continue; }
    if (node.type === 'symlink' && node.linkTarget !== undefined) {
      if (++hops > 40) return undefined;
      const target = node.linkTarget.startsWith('/') ? node.linkTarget : posix.join(dir.join('/'), node.linkTarget);
      const rest = parts.slice(i + 1);
      parts.splice(0, parts.length, ...target.split('/').filter((p) => p && p !== '.'), ...rest);
      dir = [];
      i = -1;
      continue;
    }
    if (node.type !== 'dir') return undefined;
    dir.push(name);
  }
  return undefined;
}

/** The File elements of `listed` paths that are regular files in the image, by listed name. */
export function filesOf(view: LayerView<FileFacts>, listed: string[], into: Map<string, SpdxFile>): SpdxFile[] {
  const out: SpdxFile[] = [];
  for (const name of listed) {
    let f = into.get(name);
    if (!f) {
      const at = resolveListed(view, name);
      if (at === undefined) continue;
      // Files whose bytes the view kept (the databases, os-release) were not scanned: hash those here.
      const kept = view.file(at);
      const sha1 = view.scanned(at)?.sha1 ?? (kept && createHash('sha1').update(kept).digest('hex'));
      if (!sha1) continue;
      f = { fileName: name, SPDXID: fileId(name), checksums: [{ algorithm: 'SHA1', checksumValue: sha1 }] };
      into.set(name, f);
    }
    out.push(f);
  }
  return out;
}

/** SPDX's package verification code: SHA1 of the files' SHA1s (lower-case hex), sorted and joined. */
export function verificationCode(files: SpdxFile[]): string {
  const sums = files.map((f) => f.checksums[0].checksumValue).sort();
  return createHash('sha1').update(sums.join('')).digest('hex');
}
