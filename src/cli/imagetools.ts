// `slipway imagetools create`: an index (multi-platform image) from manifests and indexes already
// in a registry, with buildx's flags where they apply.
import { UserError } from '../errors.ts';
import { normalizePlatform, isIndexMediaType, type Index, type Manifest } from '../oci/index.ts';
import { RegistryClient, createIndex, parseReference, withTarget, type PreparedSource, type Reference } from '../registry/index.ts';
import { openSink, openSource, parseImageName, readConfig, transfer, type ImageSource } from '../transport/index.ts';
import { parseFlags, type Command } from './command.ts';
import { registryClientOptions } from './copy.ts';

const help = `Usage: slipway imagetools create [OPTIONS] [SOURCE...]

Creates an index over the SOURCE images (by tag or digest, REGISTRY/REPO:TAG or REPO@sha256:…,
or a file: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]) and pushes it
under every -t. A file source is pushed into the target's repository first. An index source adds its manifests as they are; a single manifest
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

/** A file-transport source as createIndex takes it: its descriptors, and its copy into the target. */
async function prepared(src: ImageSource, client: RegistryClient): Promise<PreparedSource> {
  const top = await src.top();
  let descriptors;
  if (isIndexMediaType(top.mediaType)) {
    descriptors = (JSON.parse(top.bytes.toString()) as Index).manifests;
  } else {
    const { config } = await readConfig(src, JSON.parse(top.bytes.toString()) as Manifest);
    if (!config.os || !config.architecture) throw new UserError(`${src.name}: its config names no os/architecture, so the index cannot say which platform it is`);
    const platform = normalizePlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
    descriptors = [{ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length, platform }];
  }
  return {
    name: src.name, mediaType: top.mediaType, descriptors,
    async copyInto(target: Reference) {
      const sink = await openSink([{ transport: 'docker', ref: withTarget(target, { digest: top.digest }), text: target.toString() }], client);
      await transfer(src, sink);
    },
  };
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
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    const opened: ImageSource[] = [];
    try {
      const sources: Array<Reference | PreparedSource> = [];
      for (const text of positionals) {
        const name = parseImageName(text);
        if (name.transport === 'docker') {
          sources.push(name.ref);
          continue;
        }
        const src = await openSource(name, client);
        opened.push(src);
        sources.push(await prepared(src, client));
      }
      const log = (l: string) => io.stderr.write(l + '\n');
      const made = await createIndex(client, sources, targets, {
        append: values.append, annotations: parseAnnotations(values.annotation), dryRun: values['dry-run'], log,
        async copyInto(src, target) {
          const res = await transfer(await openSource({ transport: 'docker', ref: src, text: src.toString() }, client), await openSink([{ transport: 'docker', ref: target, text: target.toString() }], client));
          log(`${src.toString()}: ${res.manifests} manifest(s) into ${target.registry}/${target.repository}, blobs mounted ${res.blobs.mounted}, uploaded ${res.blobs.uploaded}, present ${res.blobs.exists}`);
        },
      });
      if (values['dry-run']) io.stdout.write(JSON.stringify(JSON.parse(made.bytes.toString()), null, 2) + '\n');
      else io.stdout.write(`${made.digest}\n`);
      return 0;
    } finally {
      for (const src of opened) await src.close();
      await client.close();
    }
  },
};
