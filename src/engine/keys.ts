// Every step cache key format, in one place: they are the on-disk (and registry cache) contract, so
// each is pinned by a unit test (test/engine/keys.test.ts) and a change to what any step writes
// bumps LAYER_FORMAT, which salts every stored key.
//
// Two kinds of keys:
// - state keys name a stage's filesystem + config after some steps (scratch, an image, each step);
//   they chain (`parent`) and are never stored on their own;
// - record keys (`layerRecord`, `epochVariant`, `compressedVariant`) are what the cache stores a layer under.
import { cacheKey } from '../cache/index.ts';
import type { ExpandedInstruction, Mount } from '../dockerfile/index.ts';
import { formatPlatform, type Platform } from '../oci/index.ts';

/**
 * Bumped whenever the bytes a step writes for the same inputs change (a conformance fix, a new tar
 * rule), so a cache made by an older slipway is a miss, never a stale layer. 1: wave 1. 3: COPY/ADD as
 * BuildKit (new target dirs 0755, owners kept from stages, destination symlinks followed, archives
 * confined to their destination).
 * 4: gzip layers store blocks of random-looking bytes instead of deflating them (src/fs/compress.ts).
 */
export const LAYER_FORMAT = 4;

/** `FROM scratch` (and `COPY --from=scratch`) for one platform. */
export function scratchKey(platform: Platform): string {
  return cacheKey({ scratch: formatPlatform(platform) });
}

/** A base image, by the manifest digest it resolved to. */
export function imageKey(manifestDigest: string): string {
  return cacheKey({ image: manifestDigest });
}

/** Where the resolution of a base image reference for one platform is kept. */
export function baseImageKey(ref: string, platform: Platform): string {
  return cacheKey({ format: LAYER_FORMAT, base: ref, platform: formatPlatform(platform) });
}

/** A metadata instruction (ENV, LABEL, CMD, …): no layer, only a config change. */
export function metadataKey(parent: string, instruction: ExpandedInstruction, createdBy: string | undefined): string {
  return cacheKey({ parent, step: instruction, createdBy: createdBy ?? null });
}

export function workdirKey(k: { parent: string; path: string; user: string }): string {
  return cacheKey({ parent: k.parent, op: 'WORKDIR', path: k.path, user: k.user });
}

/** The COPY/ADD flags every COPY key holds. */
export interface CopyKeyFlags {
  op: 'COPY' | 'ADD';
  dest: string;
  workdir: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD --unpack when given (absent from keys made without it, so they stay as they were). */
  unpack?: boolean;
}

function copyFlags(f: CopyKeyFlags) {
  return { op: f.op, dest: f.dest, workdir: f.workdir, chown: f.chown ?? null, chmod: f.chmod ?? null, link: f.link, parents: f.parents, exclude: f.exclude, ...(f.unpack !== undefined ? { unpack: f.unpack } : {}) };
}

/** COPY --from=<stage|image>: keyed by the source state's key and the paths named, not by content. */
export function copyFromStateKey(parent: string, from: string, sources: string[], flags: CopyKeyFlags): string {
  return cacheKey({ parent, from, sources, ...copyFlags(flags) });
}

/** COPY/ADD of context files, heredocs, URLs and git: keyed by the selected sources' checksum. */
export function copyContentKey(parent: string, checksum: string, flags: CopyKeyFlags): string {
  return cacheKey({ parent, checksum, ...copyFlags(flags) });
}

/**
 * A directory named context (`--build-context NAME=DIR`, a git or http one) used as a stage's
 * filesystem (`FROM NAME`, or a stage it overrides): its one layer, keyed by the files' checksum.
 */
export function namedContextKey(checksum: string, platform: Platform): string {
  return cacheKey({ namedContext: checksum, platform: formatPlatform(platform) });
}

/** What one `RUN --mount` adds to the RUN key: its options, and for a bind the checksum of what it binds. */
export function mountKeyPart(m: Mount, boundChecksum?: string): unknown {
  const opts = { type: m.type, target: m.target, source: m.source, from: m.from ?? null, readOnly: m.readOnly, id: m.id, mode: m.mode, uid: m.uid, gid: m.gid, env: m.env ?? null };
  return boundChecksum === undefined ? opts : { ...opts, checksum: boundChecksum };
}

export interface RunKeyParts {
  parent: string;
  instruction: Extract<ExpandedInstruction, { kind: 'RUN' }>;
  /** The env the step sees (ENV + the build args it uses), proxy args excluded. */
  env: string[] | undefined;
  user: string;
  workdir: string;
  mounts: unknown[];
  platform: Platform;
  /** `--add-host` entries: they change what the step sees (BuildKit keys its ExecOp by them too). */
  extraHosts?: ReadonlyArray<{ host: string; ip: string }>;
  /** BUILDKIT_SANDBOX_HOSTNAME, when set (the default buildkitsandbox adds nothing, so older keys stay). */
  hostname?: string;
  /** RUN --device: what was asked for and the CDI devices it resolved to (only when --device is given). */
  devices?: { requested: ReadonlyArray<{ name: string; required: boolean }>; resolved: string[] };
}

export function runKey(k: RunKeyParts): string {
  const ins = k.instruction;
  return cacheKey({
    parent: k.parent, op: 'RUN', args: ins.args, env: k.env, user: k.user, workdir: k.workdir, network: ins.network,
    security: ins.security, mounts: k.mounts, inlineFiles: ins.inlineFiles, platform: formatPlatform(k.platform),
    ...(k.extraHosts?.length ? { extraHosts: k.extraHosts } : {}), ...(k.hostname ? { hostname: k.hostname } : {}),
    ...(k.devices ? { devices: k.devices } : {}),
  });
}

/** Where a step's layer is stored: the step key, salted with the layer format and media type flavour. */
export function layerRecordKey(stepKey: string, dockerMediaTypes: boolean): string {
  return cacheKey({ format: LAYER_FORMAT, step: stepKey, dockerMediaTypes });
}

/** The SOURCE_DATE_EPOCH variant of a stored layer (mtimes clamped), re-timed from `recordKey`'s layer. */
export function epochVariantKey(recordKey: string, epoch: number): string {
  return cacheKey({ step: recordKey, sourceDateEpoch: epoch });
}

/**
 * A layer in another compression: its blob is a function of the tar (the diffID), the compressor
 * and level (fs/compress.ts), whatever blob it was made from, so one record serves a step's layer
 * made in another compression, its epoch variants, and base image layers under force-compression.
 */
export function compressedVariantKey(diffID: string, compression: string, level: number): string {
  return cacheKey({ format: LAYER_FORMAT, diffID, compression, level });
}
