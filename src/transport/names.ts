// Image names as skopeo writes them: `docker://REF` (or a bare reference) for a registry,
// `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` and `docker-archive:FILE[:NAME:TAG]` for files.
import { UserError } from '../errors.ts';
import { parseReference } from '../registry/index.ts';
import type { ImageName } from './types.ts';

const fileTransports = ['oci', 'oci-archive', 'docker-archive'] as const;

/** Parses an image name; `defaultTag: false` keeps a registry reference without a tag untagged. */
export function parseImageName(text: string, opts: { defaultTag?: boolean } = {}): ImageName {
  if (text.startsWith('docker://')) return { transport: 'docker', ref: parseReference(text.slice('docker://'.length), opts), text };
  for (const t of fileTransports) {
    if (!text.startsWith(t + ':')) continue;
    const rest = text.slice(t.length + 1);
    // As in containers/image: the path ends at the first ':' (so a path cannot hold one).
    const colon = rest.indexOf(':');
    const path = colon < 0 ? rest : rest.slice(0, colon);
    const tag = colon < 0 ? undefined : rest.slice(colon + 1);
    if (!path) throw new UserError(`invalid image name "${text}": ${t}: needs a path`, { hint: `e.g. ${t}:./image${t === 'oci' ? '' : '.tar'}:latest` });
    if (tag !== undefined && !/^[\w][\w./:@-]{0,255}$/.test(tag)) throw new UserError(`invalid image name "${text}": "${tag}" is not a tag`, { hint: 'a tag is letters, digits, "_", ".", "-" (up to 128)' });
    return { transport: t, path, tag: tag || undefined, text };
  }
  const other = /^(dir|containers-storage|docker-daemon|ostree|sif|tarball):/.exec(text);
  if (other) {
    throw new UserError(`the ${other[1]}: transport is not supported ("${text}")`, { hint: 'use docker://REF, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]' });
  }
  return { transport: 'docker', ref: parseReference(text, opts), text };
}
