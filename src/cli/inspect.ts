// `slipway inspect REF`: what a reference resolves to — digest, media type, platforms and a
// summary of the image config (like `docker buildx imagetools inspect`), or the raw manifest bytes.
import { UserError } from '../errors.ts';
import { formatPlatform, isIndexMediaType, normalizePlatform, parsePlatform, type Index, type Manifest, type Platform } from '../oci/index.ts';
import { RegistryClient, withTarget } from '../registry/index.ts';
import { openSource, parseImageName, readConfig, resolveManifest, type ImageName, type ImageSource } from '../transport/index.ts';
import { parseFlags, type Command } from './command.ts';
import { registryClientOptions } from './copy.ts';

function row(label: string, value: string): string {
  return `${(label + ':').padEnd(12)} ${value}\n`;
}

async function imageSummary(src: ImageSource, platform: Platform | undefined, indent: string): Promise<string> {
  const { image } = await resolveManifest(src, platform);
  const manifest = JSON.parse(image.bytes.toString()) as Manifest;
  const config = (await readConfig(src, manifest)).config;
  const img = { manifest, config };
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
image, a summary of its config. REF is a registry reference (also docker://REF) or
oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] (see 'slipway copy --help').
Credentials come from $DOCKER_CONFIG/config.json or ~/.docker/config.json.

Options:
  --platform OS/ARCH[/VARIANT] Show (or with --raw, print) the image for this platform of an index
  --raw, --format json         Print the manifest or index bytes exactly as stored (skopeo inspect --raw)
  --config                     Print the image config bytes exactly as stored, for --platform or the
                               host's platform of an index (skopeo inspect --config --raw)
  --insecure-registry HOST     Allow plain http or an unverified certificate for HOST[:PORT]
                               (repeatable; localhost and 127.0.0.0/8 are always allowed)
  -h, --help                   Show this help
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags('inspect', argv, {
      platform: { type: 'string' },
      raw: { type: 'boolean' },
      format: { type: 'string' },
      config: { type: 'boolean' },
      'insecure-registry': { type: 'string', multiple: true },
    });
    if (positionals.length !== 1) throw new UserError(`slipway inspect: expected one image reference, got ${positionals.length}`, { hint: "see 'slipway inspect --help'" });
    if (values.format !== undefined && values.format !== 'json') throw new UserError(`slipway inspect: unknown --format "${values.format}": expected json`, { hint: 'json prints the raw manifest or index; add --config for the config' });
    let platform: Platform | undefined;
    if (values.platform) {
      try { platform = parsePlatform(values.platform); } catch (err) { throw new UserError(`slipway inspect: ${(err as Error).message}`); }
    }
    const name: ImageName = parseImageName(positionals[0]);
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    const src = await openSource(name, client);
    try {
      if (values.config) {
        const { image } = await resolveManifest(src, platform);
        const manifest = JSON.parse(image.bytes.toString()) as Manifest;
        if (!manifest.config) throw new UserError(`${name.text}: ${image.digest} is not an image manifest (no config)`);
        io.stdout.write((await readConfig(src, manifest)).bytes);
        return 0;
      }
      if (values.raw || values.format === 'json') {
        io.stdout.write(platform ? (await resolveManifest(src, platform)).image.bytes : (await src.top()).bytes);
        return 0;
      }
      const top = await src.top();
      const ref = name.transport === 'docker' ? name.ref : undefined;
      let out = row('Name', name.text) + row('MediaType', top.mediaType) + row('Digest', top.digest);
      if (isIndexMediaType(top.mediaType)) {
        const index = JSON.parse(top.bytes.toString()) as Index;
        out += '\nManifests:\n';
        for (const m of index.manifests) {
          out += '  ' + row('Name', ref ? withTarget(ref, { digest: m.digest }).toString() : `${name.text}@${m.digest}`);
          out += '  ' + row('MediaType', m.mediaType);
          out += '  ' + row('Platform', m.platform ? formatPlatform(normalizePlatform(m.platform)) : 'unknown');
          if (m.annotations?.['vnd.docker.reference.type']) out += '  ' + row('Type', m.annotations['vnd.docker.reference.type']);
          out += '\n';
        }
        if (platform) out += await imageSummary(src, platform, '');
      } else {
        const manifest = JSON.parse(top.bytes.toString()) as Manifest;
        if (manifest.config) out += '\n' + await imageSummary(src, undefined, '');
      }
      io.stdout.write(out);
      return 0;
    } finally {
      await src.close();
      await client.close();
    }
  },
};
