// `slipway inspect REF`: what a reference resolves to — digest, media type, platforms and a
// summary of the image config (like `docker buildx imagetools inspect`), or the raw manifest bytes.
import { UserError } from '../errors.ts';
import { formatPlatform, isIndexMediaType, normalizePlatform, parsePlatform, type Index, type Manifest } from '../oci/index.ts';
import { RegistryClient, withTarget, type Reference } from '../registry/index.ts';
import { parseReference } from '../registry/index.ts';
import { parseFlags, type Command } from './command.ts';
import { registryClientOptions } from './copy.ts';

function row(label: string, value: string): string {
  return `${(label + ':').padEnd(12)} ${value}\n`;
}

async function imageSummary(client: RegistryClient, ref: Reference, platformText: string | undefined, indent: string): Promise<string> {
  const img = await client.resolveImage(ref, platformText ? parsePlatform(platformText) : undefined);
  const c = img.config.config ?? {};
  const size = img.manifest.layers.reduce((n, l) => n + l.size, 0);
  let out = '';
  const add = (label: string, value: string | undefined) => { if (value) out += indent + row(label, value); };
  add('Platform', formatPlatform(normalizePlatform({ os: img.config.os, architecture: img.config.architecture, variant: img.config.variant })));
  add('Created', img.config.created);
  add('Layers', `${img.manifest.layers.length} (${size} bytes compressed)`);
  add('Config', img.manifest.config.digest);
  add('User', c.User);
  add('WorkingDir', c.WorkingDir);
  add('Entrypoint', c.Entrypoint ? JSON.stringify(c.Entrypoint) : undefined);
  add('Cmd', c.Cmd ? JSON.stringify(c.Cmd) : undefined);
  for (const e of c.Env ?? []) add('Env', e.replace(/=.*/s, (v) => (/(TOKEN|SECRET|PASSWORD)/i.test(e.split('=')[0]) ? '=***' : v)));
  for (const p of Object.keys(c.ExposedPorts ?? {})) add('Expose', p);
  for (const [k, v] of Object.entries(c.Labels ?? {})) add('Label', `${k}=${v}`);
  return out;
}

export const inspectCommand: Command = {
  name: 'inspect',
  summary: 'Show what an image reference resolves to in its registry',
  help: `Usage: slipway inspect [OPTIONS] REF

Prints the digest and media type REF resolves to; for an index, the platforms it holds; for an
image, a summary of its config. Credentials come from $DOCKER_CONFIG/config.json or
~/.docker/config.json.

Options:
  --platform OS/ARCH[/VARIANT] Show (or with --raw, print) the image for this platform of an index
  --raw                        Print the manifest bytes exactly as the registry serves them
  --insecure-registry HOST     Allow plain http or an unverified certificate for HOST[:PORT]
                               (repeatable; localhost and 127.0.0.0/8 are always allowed)
  -h, --help                   Show this help
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags('inspect', argv, {
      platform: { type: 'string' },
      raw: { type: 'boolean' },
      'insecure-registry': { type: 'string', multiple: true },
    });
    if (positionals.length !== 1) throw new UserError(`slipway inspect: expected one image reference, got ${positionals.length}`, { hint: "see 'slipway inspect --help'" });
    if (values.platform) {
      try { parsePlatform(values.platform); } catch (err) { throw new UserError(`slipway inspect: ${(err as Error).message}`); }
    }
    const ref = parseReference(positionals[0]);
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    try {
      if (values.raw) {
        if (values.platform) {
          const img = await client.resolveImage(ref, parsePlatform(values.platform));
          io.stdout.write(img.manifestBytes);
        } else {
          io.stdout.write((await client.getManifest(ref)).bytes);
        }
        return 0;
      }
      const top = await client.getManifest(ref);
      let out = row('Name', ref.toString()) + row('MediaType', top.mediaType) + row('Digest', top.digest);
      if (isIndexMediaType(top.mediaType)) {
        const index = JSON.parse(top.bytes.toString()) as Index;
        out += '\nManifests:\n';
        for (const m of index.manifests) {
          out += '  ' + row('Name', withTarget(ref, { digest: m.digest }).toString());
          out += '  ' + row('MediaType', m.mediaType);
          out += '  ' + row('Platform', m.platform ? formatPlatform(normalizePlatform(m.platform)) : 'unknown');
          if (m.annotations?.['vnd.docker.reference.type']) out += '  ' + row('Type', m.annotations['vnd.docker.reference.type']);
          out += '\n';
        }
        if (values.platform) out += await imageSummary(client, ref, values.platform, '');
      } else {
        const manifest = JSON.parse(top.bytes.toString()) as Manifest;
        if (manifest.config) out += '\n' + await imageSummary(client, withTarget(ref, { digest: top.digest }), values.platform, '');
      }
      io.stdout.write(out);
      return 0;
    } finally {
      await client.close();
    }
  },
};
