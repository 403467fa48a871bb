// `slipway imagetools create`: an index (multi-platform image) from manifests and indexes already
// in a registry, with buildx's flags where they apply.
import { UserError } from '../errors.ts';
import { RegistryClient, createIndex, parseReference } from '../registry/index.ts';
import { parseFlags, type Command } from './command.ts';
import { registryClientOptions } from './copy.ts';

const help = `Usage: slipway imagetools create [OPTIONS] [SOURCE...]

Creates an index over the SOURCE images (by tag or digest, REGISTRY/REPO:TAG or REPO@sha256:…)
and pushes it under every -t. An index source adds its manifests as they are; a single manifest
adds one entry with the platform its config names. Sources in another repository of the target's
registry are mounted into it (blobs never move); from another registry they are copied.

Options:
  -t, --tag NAME              Target reference (repeatable; all in one repository)
      --append                Keep the manifests of the first -t's current image, then add SOURCEs
      --annotation KEY=VALUE  Annotation of the index (repeatable; "index:KEY=VALUE" is the same)
      --dry-run               Print the index JSON on stdout, push nothing
      --insecure-registry H   Reach registry H over plain http / unverified TLS (repeatable)
  -h, --help                  Show this help`;

function parseAnnotations(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const m = /^(?:index:)?([^=:\s][^=\s]*)=(.*)$/s.exec(v);
    if (!m || /^(manifest|manifest-descriptor|index-descriptor)(\[.*\])?:/.test(v)) {
      throw new UserError(`invalid --annotation "${v}": expected KEY=VALUE or index:KEY=VALUE (an index holds only its own annotations here)`);
    }
    out[m[1]] = m[2];
  }
  return out;
}

export const imagetoolsCommand: Command = {
  name: 'imagetools',
  summary: 'Create an index from images already in a registry (imagetools create)',
  help,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub !== 'create') throw new UserError(`slipway imagetools: unknown sub-command "${sub ?? ''}": expected create`, { hint: "see 'slipway imagetools --help'" });
    const { values, positionals } = parseFlags('imagetools create', rest, {
      tag: { type: 'string', short: 't', multiple: true },
      append: { type: 'boolean' },
      annotation: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      'insecure-registry': { type: 'string', multiple: true },
    });
    const targets = (values.tag ?? []).map((t) => parseReference(t));
    const sources = positionals.map((s) => parseReference(s));
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    try {
      const made = await createIndex(client, sources, targets, {
        append: values.append, annotations: parseAnnotations(values.annotation), dryRun: values['dry-run'], log: (l) => io.stderr.write(l + '\n'),
      });
      if (values['dry-run']) io.stdout.write(JSON.stringify(JSON.parse(made.bytes.toString()), null, 2) + '\n');
      else io.stdout.write(`${made.digest}\n`);
      return 0;
    } finally {
      await client.close();
    }
  },
};
