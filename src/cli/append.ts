// `slipway append -b BASE -f LAYER… -t NEW`: crane's append — layers added on top of every platform
// of BASE and pushed as NEW; the base's blobs are mounted (same registry), never downloaded.
import { UserError } from '../errors.ts';
import { mutateImage, readLayer, type AddedLayer } from '../mutate/index.ts';
import { parseFlags, type Command } from './command.ts';
import { withSourceAndSink } from './images.ts';

const help = `Usage: slipway append -b BASE -f LAYER [-f LAYER…] -t NEW

Adds each LAYER on top of every platform of BASE and pushes the result as NEW. A LAYER is a tar,
a gzip-compressed tar, or a directory (its contents at the image's root, owned by 0:0), or
SRC:/DEST — a file or directory SRC placed at the absolute path DEST in the image (owned by 0:0,
mode kept; missing parent directories made 0755), e.g. -f ./app:/usr/local/bin/app. The
base's layers are mounted on the same registry, not downloaded; its annotations are kept.
BASE and NEW may also be oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE[:NAME:TAG]
(see 'slipway copy --help').

Options:
  -b, --base REF               The base image (a manifest or a multi-platform index)
  -f, --new_layer PATH         A layer to append: PATH or SRC:/DEST (repeatable; also --file)
  -t, --new_tag NAME           Where to push the result (repeatable; also --tag)
      --insecure-registry H    Reach registry H over plain http / unverified TLS (repeatable)
  -h, --help                   Show this help`;

export const appendCommand: Command = {
  name: 'append',
  summary: 'Add layers (tar, tar.gz or a directory) on top of an image, every platform',
  help,
  async run(argv, io) {
    const { values, positionals } = parseFlags('append', argv, {
      base: { type: 'string', short: 'b' },
      new_layer: { type: 'string', short: 'f', multiple: true },
      file: { type: 'string', multiple: true },
      new_tag: { type: 'string', short: 't', multiple: true },
      tag: { type: 'string', multiple: true },
      'insecure-registry': { type: 'string', multiple: true },
    });
    if (positionals.length) throw new UserError(`slipway append: unexpected argument "${positionals[0]}"`, { hint: "see 'slipway append --help'" });
    if (!values.base) throw new UserError('slipway append: -b BASE is required');
    const files = [...(values.new_layer ?? []), ...(values.file ?? [])];
    if (!files.length) throw new UserError('slipway append: give at least one -f LAYER (a tar, tar.gz, directory or SRC:/DEST)');
    const tags = [...(values.new_tag ?? []), ...(values.tag ?? [])];
    const layers: AddedLayer[] = [];
    for (const f of files) layers.push(await readLayer(f));
    const res = await withSourceAndSink('append', values.base, tags, values['insecure-registry'], (src, sink) => mutateImage(src, sink, { edits: {}, layers }));
    io.stdout.write(res.digest + '\n');
    return 0;
  },
};
