// `slipway copy SRC DST`: copies an image or a whole index between repositories or registries,
// byte for byte (same digests), mounting blobs instead of uploading them on the same registry.
import { UserError } from '../errors.ts';
import { parsePlatform } from '../oci/index.ts';
import { RegistryClient, copyImage, parseReference, registryOptionsFromEnv, type RegistryClientOptions } from '../registry/index.ts';
import { parseFlags, type Command } from './command.ts';
import { version } from '../launch/index.ts';

/** Registry client settings shared by the registry commands: docker config from the environment. */
export function registryClientOptions(insecure: string[] | undefined, env: Record<string, string | undefined> = process.env): RegistryClientOptions {
  return registryOptionsFromEnv(env, { insecureRegistries: insecure, userAgent: `slipway/${version}` });
}

export const copyCommand: Command = {
  name: 'copy',
  summary: 'Copy an image or a multi-platform index between registries',
  help: `Usage: slipway copy [OPTIONS] SRC DST

Copies an image from SRC to DST byte for byte, so every digest stays the same. An index
(multi-platform image) is copied whole: every platform's manifest, its blobs, then the index.
On one registry blobs are mounted from SRC's repository instead of uploaded again.
DST without a tag or digest takes SRC's tag. Credentials come from $DOCKER_CONFIG/config.json
or ~/.docker/config.json (docker login, credential helpers).

Options:
  --all-platforms              Copy every platform of an index (the default)
  --platform OS/ARCH[/VARIANT] Copy only this platform's image out of an index
  --insecure-registry HOST     Allow plain http or an unverified certificate for HOST[:PORT]
                               (repeatable; localhost and 127.0.0.0/8 are always allowed)
  -q, --quiet                  Print only the digest
  -h, --help                   Show this help
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags('copy', argv, {
      'all-platforms': { type: 'boolean' },
      platform: { type: 'string' },
      'insecure-registry': { type: 'string', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
    });
    if (positionals.length !== 2) throw new UserError(`slipway copy: expected SRC and DST, got ${positionals.length} argument(s)`, { hint: "see 'slipway copy --help'" });
    if (values['all-platforms'] && values.platform) throw new UserError('slipway copy: --all-platforms and --platform exclude each other');
    let platform;
    try {
      platform = values.platform ? parsePlatform(values.platform) : undefined;
    } catch (err) {
      throw new UserError(`slipway copy: ${(err as Error).message}`);
    }
    const src = parseReference(positionals[0]);
    const dst = parseReference(positionals[1], { defaultTag: false });
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    try {
      const started = performance.now();
      const res = await copyImage(client, src, dst, { platform, log: values.quiet ? undefined : (l) => io.stderr.write(l + '\n') });
      if (values.quiet) {
        io.stdout.write(res.digest + '\n');
      } else {
        const secs = (performance.now() - started) / 1000;
        io.stdout.write(`copied ${src.toString()} → ${dst.toString()}\n`);
        io.stdout.write(`digest: ${res.digest}\nmanifests: ${res.manifests}, blobs uploaded: ${res.blobs.uploaded} (${res.bytesUploaded} bytes), mounted: ${res.blobs.mounted}, already present: ${res.blobs.exists}, in ${secs.toFixed(1)} s\n`);
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
