// One layer compression for the whole build, from the outputs' `compression=`, `compression-level=`,
// `force-compression=` and `oci-mediatypes=` keys (buildx's) and the `--compression` /
// `--compression-level` flags (kaniko's): they must agree, and the result must fit every output.
import { UserError } from '../errors.ts';
import { parseCompressionLevel } from './parse.ts';
import { layerCompressions, type BuildRequest, type LayerCompression, type LayerCompressionType, type OutputSpec } from './types.ts';

export interface CompressionFlags {
  /** `--compression gzip|zstd|uncompressed`. */
  compression?: string;
  /** `--compression-level N`. */
  compressionLevel?: string;
  /** `--docker-media-types`. */
  dockerMediaTypes?: boolean;
}

function describe(o: OutputSpec): string {
  return `--output type=${o.type === 'none' ? 'image' : o.type}${'dest' in o ? `,dest=${o.dest}` : ''}`;
}

/** The one value every source that gives one agrees on, or a clear error naming two that differ. */
function agreed<T>(what: string, given: Array<{ value: T | undefined; where: string }>, hint: string): T | undefined {
  const said = given.filter((g): g is { value: T; where: string } => g.value !== undefined);
  const other = said.find((g) => g.value !== said[0].value);
  if (other) throw new UserError(`conflicting ${what}: ${said[0].where} asks for ${String(said[0].value)}, ${other.where} for ${String(other.value)}`, { hint });
  return said[0]?.value;
}

/** The build's layer compression and media type flavour (`compression` only when something asked for one). */
export function buildCompression(outputs: OutputSpec[], flags: CompressionFlags): Pick<BuildRequest, 'compression' | 'dockerMediaTypes'> {
  const hint = 'a build writes its layers one way for every output: give the setting once, or the same value everywhere';
  let flagType: LayerCompressionType | undefined;
  if (flags.compression !== undefined) {
    const c = flags.compression.trim().toLowerCase();
    if (c === 'estargz') throw new UserError('--compression estargz is not supported (slipway writes gzip, zstd or uncompressed layers)', { hint: 'use --compression zstd for smaller layers that unpack faster, or gzip (the default) for any runtime' });
    if (!(layerCompressions as readonly string[]).includes(c)) throw new UserError(`invalid --compression "${flags.compression}"`, { hint: `use ${layerCompressions.join(', ')}` });
    flagType = c as LayerCompressionType;
  }
  const flagLevel = flags.compressionLevel === undefined ? undefined : parseCompressionLevel(flags.compressionLevel, '--compression-level');
  const type = agreed('layer compressions', [...outputs.map((o) => ({ value: o.compression, where: describe(o) })), { value: flagType, where: '--compression' }], hint);
  const level = agreed('compression levels', [...outputs.map((o) => ({ value: o.compressionLevel, where: describe(o) })), { value: flagLevel, where: '--compression-level' }], hint);
  const force = agreed('force-compression settings', outputs.map((o) => ({ value: o.forceCompression, where: describe(o) })), hint);
  const oci = agreed('media types (oci-mediatypes)', [
    ...outputs.map((o) => ({ value: o.ociMediaTypes, where: describe(o) })),
    { value: flags.dockerMediaTypes ? false : undefined, where: '--docker-media-types' },
  ], hint);
  const request: Pick<BuildRequest, 'compression' | 'dockerMediaTypes'> = { dockerMediaTypes: oci === false };
  if (type !== undefined || level !== undefined || force !== undefined) {
    request.compression = { type: type ?? 'gzip', ...(level !== undefined ? { level } : {}), force: force ?? false };
  }
  checkLayerCompression({ ...request, outputs });
  return request;
}

/**
 * Whether the build's compression fits its level range and every output, before anything runs
 * (make.ts and the engine both ask): zstd has no Docker media type, and a docker archive holds no
 * zstd layers.
 */
export function checkLayerCompression(request: Pick<BuildRequest, 'compression' | 'dockerMediaTypes' | 'outputs'>): void {
  const c: LayerCompression | undefined = request.compression;
  if (!c) return;
  if (c.level !== undefined) {
    if (c.type === 'uncompressed') throw new UserError(`compression-level ${c.level} has no meaning for uncompressed layers`, { hint: 'drop the compression level, or use compression=gzip or zstd' });
    const [min, max] = c.type === 'gzip' ? [0, 9] : [1, 22];
    if (!Number.isInteger(c.level) || c.level < min || c.level > max) throw new UserError(`${c.type} compression level ${c.level} is out of range`, { hint: `${c.type} takes a level from ${min} to ${max}` });
  }
  if (c.type === 'zstd' && request.dockerMediaTypes) {
    throw new UserError('zstd layers have no Docker media type', { hint: 'drop --docker-media-types / oci-mediatypes=false, or use compression=gzip' });
  }
  const archive = request.outputs.find((o) => o.type === 'docker');
  if (c.type === 'zstd' && archive) {
    throw new UserError(`a docker archive (${describe(archive)}) cannot hold zstd layers: docker load reads gzip or uncompressed ones`, { hint: 'write zstd to type=oci or type=registry, and the docker archive from a separate gzip build' });
  }
}
