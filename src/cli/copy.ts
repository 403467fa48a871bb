// `slipway copy SRC DST`: copies an image or a whole index between repositories or registries,
// byte for byte (same digests), mounting blobs instead of uploading them on the same registry.
import { UserError } from '../errors.ts';
import { parsePlatform } from '../oci/index.ts';
import { RegistryClient, registryOptionsFromEnv, withTarget, type RegistryClientOptions } from '../registry/index.ts';
import { openSink, openSource, parseImageName, transfer } from '../transport/index.ts';
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

SRC and DST are registry references (also docker://REF) or files, with skopeo's names:
  oci:DIR[:TAG]                  an OCI image layout directory (TAG: its ref.name annotation)
  oci-archive:FILE[:TAG]         the same as a tar file
  docker-archive:FILE[:NAME:TAG] a docker save / docker load tarball: one platform (--platform,
                                 default the host's); it keeps the config and the layers' diff_ids
                                 but no manifest, so the manifest digest changes on the way in
An OCI destination is written whole (an existing one is replaced).

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
    const srcName = parseImageName(positionals[0]);
    let dstName = parseImageName(positionals[1], { defaultTag: false });
    // A registry DST without a tag or digest takes SRC's tag (else the image goes in by digest only).
    if (dstName.transport === 'docker' && !dstName.ref.tag && !dstName.ref.digest && srcName.transport === 'docker' && srcName.ref.tag) {
      dstName = { ...dstName, ref: withTarget(dstName.ref, { tag: srcName.ref.tag }) };
    }
    const client = new RegistryClient(registryClientOptions(values['insecure-registry']));
    try {
      const started = performance.now();
      const log = values.quiet ? undefined : (l: string) => io.stderr.write(l + '\n');
      const src = await openSource(srcName, client);
      try {
        const sink = await openSink([dstName], client);
        try {
          const res = await transfer(src, sink, { platform, log });
          const secs = ((performance.now() - started) / 1000).toFixed(1);
          const blobs = dstName.transport === 'docker'
            ? `, blobs uploaded: ${res.blobs.uploaded} (${res.bytesUploaded} bytes), mounted: ${res.blobs.mounted}, already present: ${res.blobs.exists}`
            : '';
          io.stdout.write(values.quiet ? res.digest + '\n' : `copied ${srcName.text} → ${dstName.text}\ndigest: ${res.digest}\nmanifests: ${res.manifests}${blobs}, in ${secs} s\n`);
        } finally {
          await sink.close();
        }
      } finally {
        await src.close();
      }
      return 0;
    } finally {
      await client.close();
    }
  },
};
