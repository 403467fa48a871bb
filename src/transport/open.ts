// An image name to its source or sink.
import { UserError } from '../errors.ts';
import type { RegistryClient } from '../registry/index.ts';
import { dockerArchiveSink, dockerArchiveSource } from './docker-archive.ts';
import { ociArchiveSource, ociDirSource, ociSink } from './oci.ts';
import { registrySink, registrySource } from './registry.ts';
import type { ImageName, ImageSink, ImageSource } from './types.ts';

export function openSource(name: ImageName, client: RegistryClient): Promise<ImageSource> {
  switch (name.transport) {
    case 'docker': return Promise.resolve(registrySource(client, name.ref, name.text));
    case 'oci': return ociDirSource(name.path, name.tag, name.text);
    case 'oci-archive': return ociArchiveSource(name.path, name.tag, name.text);
    case 'docker-archive': return dockerArchiveSource(name.path, name.tag, name.text);
  }
}

/** A sink for `names`: several registry tags of one repository, or one file name. */
export function openSink(names: ImageName[], client: RegistryClient): Promise<ImageSink> {
  if (names.length === 0) throw new UserError('no destination given');
  const first = names[0];
  if (first.transport === 'docker') {
    const refs = names.map((n) => {
      if (n.transport !== 'docker') throw new UserError(`"${n.text}": registry and file destinations cannot be mixed`);
      return n.ref;
    });
    if (refs.some((r) => r.registry !== refs[0].registry || r.repository !== refs[0].repository)) throw new UserError('every destination tag must be in the same repository');
    return Promise.resolve(registrySink(client, refs, names.map((n) => n.text).join(', ')));
  }
  if (names.length > 1) throw new UserError(`"${names[1].text}": a ${first.transport}: destination takes one name`);
  switch (first.transport) {
    case 'oci': return ociSink(first.path, first.tag, false, first.text);
    case 'oci-archive': return ociSink(first.path, first.tag, true, first.text);
    case 'docker-archive': return dockerArchiveSink(first.path, first.tag, first.text);
  }
}
