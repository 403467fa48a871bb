// Builds the typed BuildRequest from raw strings, reading only what the request names: the
// Dockerfile, secret files, and the environment given to it (never process.env).
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.ts';
import { formatPlatform, parsePlatform, type Platform } from '../oci/index.ts';
import { checkMergeSpec, insecureMirrorHosts, parseMirrorFlag, parseReference, type MirrorRule } from '../registry/index.ts';
import { parseBuildContexts } from './contexts.ts';
import { buildCompression } from './compression.ts';
import { parseEntitlements } from './entitlements.ts';
import { parseCacheRef, parseKeyValue, parseOutputSpec, parseSecretSpec } from './parse.ts';
import { publishOptions, type RawPublishOptions } from './publish-options.ts';
import { parseSshSpecs } from './ssh.ts';
import { isolationModes, type BuildRequest, type Isolation, type OutputSpec, type SecretSpec } from './types.ts';

export interface RawBuildOptions extends RawPublishOptions {
  /** Context directory, relative to cwd. */
  context: string;
  /** Dockerfile path relative to cwd; `-` reads `stdin`. Default: CONTEXT/Dockerfile. */
  file?: string;
  stdin?: () => string;
  buildArgs?: string[];
  target?: string;
  platforms?: string[];
  tags?: string[];
  labels?: string[];
  outputs?: string[];
  push?: boolean;
  noCache?: boolean;
  noCacheFilter?: string[];
  network?: string;
  secrets?: string[];
  /** `--build-context NAME=VALUE` values (directories relative to cwd). */
  buildContexts?: string[];
  /** `--ssh` values: default, ID, ID=SOCKET, ID=KEYFILE[,KEYFILE]. */
  ssh?: string[];
  sourceDateEpoch?: string;
  cacheDir?: string;
  cacheFrom?: string[];
  cacheTo?: string;
  runtime?: string;
  isolation?: string;
  /** `--registry-mirror HOST=MIRROR` values; they come before `mirrorConfig`. */
  registryMirrors?: string[];
  /** Mirror rules read from the user's config files (registry's mirrorRulesFromEnv). */
  mirrorConfig?: MirrorRule[];
  pull?: boolean;
  /** `--allow` values (buildx's entitlements) and `--cdi-spec-dir` values (relative to cwd). */
  allow?: string[];
  cdiSpecDirs?: string[];
  /** `--add-host HOST:IP` (or HOST=IP) values. */
  addHosts?: string[];
  insecureRegistries?: string[];
  perArchTags?: boolean;
  dockerMediaTypes?: boolean;
  /** `--compression` and `--compression-level` (kaniko's flags; the outputs' compression keys must agree). */
  compression?: string;
  compressionLevel?: string;
  /** `--merge-platforms` (comma-separated) and the merge id (cli/ and action/ fill in the CI run's). */
  mergePlatforms?: string;
  mergeId?: string;
  cwd: string;
  env: Record<string, string | undefined>;
}

function readDockerfile(raw: RawBuildOptions, contextDir: string): BuildRequest['dockerfile'] {
  if (raw.file === '-') {
    if (!raw.stdin) throw new UserError('-f - reads the Dockerfile from standard input, but none was given');
    return { path: join(contextDir, 'Dockerfile'), contents: raw.stdin() };
  }
  const path = raw.file ? resolve(raw.cwd, raw.file) : join(contextDir, 'Dockerfile');
  try {
    return { path, contents: readFileSync(path, 'utf8') };
  } catch {
    throw new UserError(`cannot read Dockerfile ${path}`, { hint: raw.file ? 'check the -f/--file path' : `put a Dockerfile in ${contextDir}, or name one with -f` });
  }
}

function readSecret(text: string, raw: RawBuildOptions): SecretSpec {
  const spec = parseSecretSpec(text);
  if (spec.env !== undefined && spec.src !== undefined && raw.env[spec.env] !== undefined) return { id: spec.id, value: Buffer.from(raw.env[spec.env]!) };
  if (spec.src !== undefined) {
    const path = resolve(raw.cwd, spec.src);
    try {
      return { id: spec.id, value: readFileSync(path) };
    } catch {
      throw new UserError(`secret "${spec.id}": cannot read file ${path}`);
    }
  }
  const value = raw.env[spec.env!];
  if (value === undefined) throw new UserError(`secret "${spec.id}": environment variable ${spec.env} is not set`);
  return { id: spec.id, value: Buffer.from(value) };
}

/** `HOST:IP` or `HOST=IP`, as buildx takes them (an IPv6 address keeps its colons). */
export function parseAddHost(text: string): { host: string; ip: string } {
  const m = /^([^:=]+)[:=](.+)$/.exec(text);
  const ip = m?.[2].replace(/^\[(.*)\]$/, '$1') ?? '';
  if (!m || !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(m[1]) || isIP(ip) === 0) {
    if (m && ip === 'host-gateway') throw new UserError(`--add-host ${text}: host-gateway is the Docker daemon's gateway address, and there is no daemon here`, { hint: 'give the IP address itself, e.g. --add-host host.docker.internal:172.17.0.1' });
    throw new UserError(`invalid --add-host "${text}": expected HOST:IP, e.g. db.internal:10.0.0.5 or v6host:[::1]`);
  }
  return { host: m[1], ip };
}

function parseEpoch(text: string | undefined): number | undefined {
  if (text === undefined || text === '') return undefined;
  if (!/^\d+$/.test(text)) throw new UserError(`invalid SOURCE_DATE_EPOCH "${text}": expected whole seconds since 1970`);
  return Number(text);
}

/** $XDG_CACHE_HOME/slipway, else ~/.cache/slipway. */
export function defaultCacheDir(env: RawBuildOptions['env']): string {
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : join(env.HOME || homedir(), '.cache');
  return join(base, 'slipway');
}

function cacheTarget(t: { ref: string; mode: 'min' | 'max' }): { ref: string; mode: 'min' | 'max' } {
  checkedReference(t.ref);
  return t;
}

/**
 * A tag as docker checks it, plus one rule it leaves to the daemon: `UPPER/app` reads as registry
 * host "UPPER" (a first component with capitals is a host to docker), which no push or load accepts.
 */
function checkedTag(ref: string): string {
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  if (first && first !== first.toLowerCase() && !/[.:]/.test(first)) {
    throw new UserError(`invalid tag "${ref}": repository name must be lowercase`, { hint: `write ${ref.toLowerCase().split(':')[0]}${ref.includes(':') ? ':' + ref.split(':').slice(1).join(':') : ''} (only the tag after ":" may have capitals)` });
  }
  return checkedReference(ref);
}

function checkedReference(ref: string): string {
  parseReference(ref);
  return ref;
}

export function makeBuildRequest(raw: RawBuildOptions): BuildRequest {
  const contextDir = resolve(raw.cwd, raw.context);
  let isDir = false;
  try { isDir = statSync(contextDir).isDirectory(); } catch { /* reported below */ }
  if (!isDir) throw new UserError(`build context ${contextDir} is not a directory`, { hint: 'pass the context directory as the last argument, for example "."' });

  const buildArgs: Record<string, string> = {};
  for (const a of raw.buildArgs ?? []) {
    const kv = parseKeyValue(a, 'build arg', raw.env);
    if (kv) buildArgs[kv[0]] = kv[1];
  }
  const labels: Record<string, string> = {};
  for (const l of raw.labels ?? []) {
    const kv = parseKeyValue(l, 'label')!;
    labels[kv[0]] = kv[1];
  }
  const outputs: OutputSpec[] = (raw.outputs ?? []).map(parseOutputSpec);
  if (raw.push && !outputs.some((o) => o.type === 'registry')) outputs.push({ type: 'registry' });
  // `name=` of an output names the image as -t does (buildx turns -t into name=).
  const tags = [...new Set([...(raw.tags ?? []), ...outputs.flatMap((o) => o.names ?? [])])];
  const layers = buildCompression(outputs, raw);
  // A bad tag is an error before the build, not after every step has run.
  for (const t of tags) checkedTag(t);
  if (outputs.some((o) => o.type === 'registry') && tags.length === 0) {
    throw new UserError('pushing needs at least one tag', { hint: 'add -t registry.example.com/app:1.0 (or the tags input)' });
  }
  const network = raw.network ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host') {
    throw new UserError(`invalid network "${network}": expected default, none or host`);
  }
  const isolation = (raw.isolation || 'auto') as Isolation;
  if (!isolationModes.includes(isolation)) {
    throw new UserError(`invalid isolation "${raw.isolation}": expected ${isolationModes.join(', ')}`, { hint: 'auto picks the strongest one that works here' });
  }
  const mirrors = [...(raw.registryMirrors ?? []).map(parseMirrorFlag), ...(raw.mirrorConfig ?? [])];
  const seen = new Set<string>();
  const platforms = (raw.platforms ?? []).map(parsePlatform).filter((p) => {
    const k = `${p.os}/${p.architecture}/${p.variant ?? ''}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });

  const annotations = [...(raw.annotations ?? []), ...outputs.flatMap((o) => o.annotations ?? [])];
  const publishing = publishOptions({ ...raw, annotations }, { platforms: platforms.length, outputs });
  const insecure = outputs.some((o) => o.insecure) ? tags.map((t) => parseReference(t).registry) : [];
  return {
    contextDir,
    dockerfile: readDockerfile(raw, contextDir),
    buildArgs,
    target: raw.target || undefined,
    platforms,
    tags,
    labels,
    outputs,
    perArchTags: Boolean(raw.perArchTags),
    noCache: Boolean(raw.noCache),
    noCacheFilter: (raw.noCacheFilter ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean),
    network,
    secrets: (raw.secrets ?? []).map((s) => readSecret(s, raw)),
    ...(raw.buildContexts?.length ? { namedContexts: parseBuildContexts(raw.buildContexts, raw.cwd) } : {}),
    ssh: parseSshSpecs(raw.ssh ?? [], raw.env, raw.cwd),
    sourceDateEpoch: parseEpoch(raw.sourceDateEpoch ?? raw.env.SOURCE_DATE_EPOCH),
    cacheDir: raw.cacheDir ? resolve(raw.cwd, raw.cacheDir) : defaultCacheDir(raw.env),
    cacheFrom: (raw.cacheFrom ?? []).map((c) => checkedReference(parseCacheRef(c, 'cache-from').ref)),
    cacheTo: raw.cacheTo ? cacheTarget(parseCacheRef(raw.cacheTo, 'cache-to')) : undefined,
    runtime: raw.runtime || undefined,
    isolation,
    mirrors,
    pull: Boolean(raw.pull),
    ...(raw.allow?.length ? { allow: parseEntitlements(raw.allow) } : {}),
    ...(raw.cdiSpecDirs?.length ? { cdiSpecDirs: raw.cdiSpecDirs.map((d) => resolve(raw.cwd, d)) } : {}),
    ...(raw.addHosts?.length ? { extraHosts: raw.addHosts.map(parseAddHost) } : {}),
    insecureRegistries: [...(raw.insecureRegistries ?? []), ...insecure, ...insecureMirrorHosts(mirrors)],
    ...layers,
    ...mergeOf(raw, outputs, platforms),
    ...publishing,
  };
}

function mergeOf(raw: RawBuildOptions, outputs: OutputSpec[], built: Platform[]): Pick<BuildRequest, 'merge'> {
  if (!raw.mergePlatforms) {
    if (raw.mergeId) throw new UserError('--merge-id without --merge-platforms: the merge needs the list of every platform of the set', { hint: 'add --merge-platforms linux/amd64,linux/arm64' });
    return {};
  }
  if (!outputs.some((o) => o.type === 'registry')) throw new UserError('--merge-platforms merges pushed images: add --push', { hint: 'each job pushes its platform; the last one writes the index' });
  if (!raw.mergeId) {
    throw new UserError('--merge-platforms needs a merge id shared by the jobs of one run', { hint: 'pass --merge-id ID, or run where GITHUB_RUN_ID or CI_PIPELINE_ID is set' });
  }
  let platforms;
  try {
    platforms = raw.mergePlatforms.split(',').map((p) => p.trim()).filter(Boolean).map(parsePlatform);
  } catch (err) {
    throw new UserError(`--merge-platforms: ${(err as Error).message}`);
  }
  const merge = checkMergeSpec({ id: raw.mergeId, platforms });
  const named = new Set(merge.platforms.map(formatPlatform));
  const stray = built.find((p) => !named.has(formatPlatform(p)));
  if (stray) {
    throw new UserError(`this job builds ${formatPlatform(stray)}, which --merge-platforms (${[...named].join(',')}) does not name`, { hint: 'list every platform of the matrix in --merge-platforms' });
  }
  return { merge };
}

/** The merge id a CI run gives its jobs: GitHub's run id and attempt, or GitLab's pipeline id. */
export function mergeIdFromEnv(env: Record<string, string | undefined>): string | undefined {
  if (env.GITHUB_RUN_ID) return `${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT || '1'}`;
  return env.CI_PIPELINE_ID || undefined;
}
