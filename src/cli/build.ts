// `slipway build`: buildx's flags → BuildRequest → engine, with plain progress on stderr.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { formatOutline, formatTargets, planBuild } from '../dockerfile/index.ts';
import { buildMetadata, plainProgress, quietProgress, rawJsonProgress, type BuildResult } from '../engine/index.ts';
import { formatBuildWarnings, formatCheckReport, type CheckWarning } from '../checks/index.ts';
import { prepareContext, runBuild, runCheck, type PreparedContext } from '../launch/index.ts';
import { UserError } from '../errors.ts';
import { formatPlatform, hostPlatform } from '../oci/index.ts';
import { mirrorRulesFromEnv } from '../registry/index.ts';
import { makeBuildRequest, mergeIdFromEnv, splitList } from '../request/index.ts';
import { parseFlags, type Command, type CommandIO } from './command.ts';
import { registryClientOptions } from './copy.ts';
import { ttyProgress } from './tty-progress.ts';
import { describePrune, parseSize } from './cache.ts';
import { pruneCache } from '../cache/index.ts';

const help = `Usage: slipway build [OPTIONS] CONTEXT

Build an image from a Dockerfile and a context, without a Docker daemon. CONTEXT is a directory, a git
URL (https://host/repo.git#REF:DIR, git://host/repo#REF, git@host:repo#REF, URL?ref=REF&subdir=DIR),
an http(s) URL of a tarball (gzip, bzip2, xz, zstd) or of a Dockerfile, or - (a tar archive or a
Dockerfile on standard input). For a remote context, a relative -f names a file inside it.

Options:
  -f, --file PATH             Dockerfile (default: CONTEXT/Dockerfile; "-" reads standard input)
  -t, --tag NAME              Image reference to tag (repeatable), e.g. registry.example.com/app:1.0
      --build-arg KEY=VALUE   Build argument (repeatable); a bare KEY takes its value from the environment
      --build-context N=V     Named context for FROM N, COPY --from=N, RUN --mount=from=N (repeatable); V is a
                              directory, docker-image://REF, oci-layout://DIR[:TAG|@DIGEST], a git or an http(s)
                              URL (one file named "context"); it replaces a stage named N, and wins over image N
      --target STAGE          Build this stage (and the stages it needs) only
      --platform LIST         Target platforms, e.g. linux/amd64,linux/arm64 (default: this machine's)
      --label KEY=VALUE       Image label (repeatable)
      --push                  Push to the registry of every tag (same as --output type=registry)
  -o, --output SPEC           type=oci,dest=FILE.tar | type=oci,dest=DIR,tar=false | type=docker,dest=FILE.tar
                              | type=registry (repeatable), with buildx's keys: compression=gzip|zstd|uncompressed,
                              compression-level=N, force-compression=true (base image layers too),
                              oci-mediatypes=false, name=REF[,REF…], annotation[-LEVEL].KEY=VALUE
      --compression C         Layer compression: gzip (default), zstd or uncompressed; cached steps are not run
                              again for another compression (same as compression= on the outputs)
      --compression-level N   gzip 0-9 (default 6), zstd 1-22 (default 3)
      --no-cache              Do not use cached steps (results are still cached)
      --no-cache-filter STAGE Run this stage's steps again even when cached (repeatable, or comma-separated)
      --secret SPEC           id=NAME,src=FILE or id=NAME,env=VAR, for RUN --mount=type=secret (repeatable)
      --ssh SPEC              default|ID=SOCKET|ID=KEYFILE[,KEYFILE], an ssh agent for RUN --mount=type=ssh
                              (repeatable; default is $SSH_AUTH_SOCK; key files are served in-process)
      --network MODE          Network for RUN steps: default, none or host
      --load                  Load the image into the local Docker daemon (docker load, else podman load; one platform)
      --annotation A          OCI annotation [LEVEL[,LEVEL…]:]KEY=VALUE (repeatable); levels manifest (default),
                              index, manifest-descriptor, index-descriptor, manifest[linux/amd64]
      --provenance VALUE      SLSA provenance: true (mode=min), mode=max, false (default: none)
      --sbom VALUE            SPDX SBOM of each platform image: true or false (default: false)
      --attest SPEC           type=provenance[,mode=min|max] or type=sbom (repeatable); pushed as OCI referrers
      --progress MODE         auto (a live view on a terminal, else plain), tty, plain, quiet or rawjson
                              (one JSON event per line on stderr)
  -q, --quiet                 Print only the image digest on stdout (same as --progress quiet)
      --iidfile PATH          Write the image ID (config digest, or the index digest) to a file
      --metadata-file PATH    Write the build result (digests, descriptor, provenance, tags) as JSON
      --cache-dir DIR         Local layer cache (default: $XDG_CACHE_HOME/slipway or ~/.cache/slipway)
      --cache-max-size SIZE   After the build, prune the cache dir to SIZE (e.g. 5GB), least recently used
                              first; entries used in the last 10 minutes stay (see 'slipway cache --help')
      --cache-from SPEC       Also use cached steps from a registry: type=registry,ref=REGISTRY/REPO:TAG (repeatable)
      --cache-to SPEC         Write this build's cached steps to a registry: type=registry,ref=REGISTRY/REPO:TAG
      --per-arch-tags         Also push TAG-ARCH (e.g. app:1.0-arm64) for each platform
      --merge-platforms LIST  One job of a matrix that builds LIST (e.g. linux/amd64,linux/arm64), one
                              platform per job: the job that finds every platform pushed writes the index
                              under every tag; the others say which are missing and succeed
      --merge-id ID           Ties the jobs of one run together (default: $GITHUB_RUN_ID-$GITHUB_RUN_ATTEMPT
                              or $CI_PIPELINE_ID)
      --call MODE             build (default), check (the build checks, no build), targets (list the stages)
                              or outline (the build args a target uses)
      --check                 Same as --call check: exit status 1 when a check fires
      --isolation MODE        How RUN steps are isolated: auto (default: the strongest that works here),
                              runc or crun (root, namespaces), rootless (user namespaces), or ptrace
                              (proot: no privileges, e.g. inside an ordinary CI container)
      --runtime NAME          OCI runtime for RUN steps: runc or crun (default as root: crun 1.8 or later if
                              installed, it starts a step sooner, else runc; rootless: runc if installed)
      --insecure-registry H   Reach registry H over plain http / unverified TLS (repeatable)
      --registry-mirror R=M   Pull R's images from mirror M first, e.g. docker.io=mirror.gcr.io (repeatable; also
                              read from registries.conf, buildkitd.toml and daemon.json)
      --pull                  Resolve every base image afresh (by default a cached tag costs one HEAD)
      --add-host HOST:IP      Add a line to /etc/hosts of every RUN step (repeatable), e.g. db.internal:10.0.0.5
      --allow ENTITLEMENT     Grant an entitlement (repeatable): security.insecure (RUN --security=insecure runs
                              privileged; runc/crun isolation only), device (every CDI device for RUN --device)
                              or device=NAME[,alias=ALIAS], network.host
      --cdi-spec-dir DIR      Read CDI device specs (.json, .yaml) from DIR instead of buildkitd's /etc/cdi, /var/run/cdi
                              and /etc/buildkit/cdi (repeatable; a later DIR wins)
      --shm-size, --ulimit    Refused with why (RUN steps get the runtime's defaults)
      --docker-media-types    Write Docker schema 2 media types instead of OCI ones

Environment: SOURCE_DATE_EPOCH (reproducible timestamps), DOCKER_CONFIG (registry credentials).`;

function parseBuildFlags(argv: string[]) {
  return parseFlags('build', argv, {
    file: { type: 'string', short: 'f' },
    tag: { type: 'string', short: 't', multiple: true },
    'build-arg': { type: 'string', multiple: true },
    'build-context': { type: 'string', multiple: true },
    target: { type: 'string' },
    platform: { type: 'string', multiple: true },
    label: { type: 'string', multiple: true },
    push: { type: 'boolean' },
    output: { type: 'string', short: 'o', multiple: true },
    'no-cache': { type: 'boolean' },
    'no-cache-filter': { type: 'string', multiple: true },
    secret: { type: 'string', multiple: true },
    ssh: { type: 'string', multiple: true },
    network: { type: 'string' },
    progress: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    load: { type: 'boolean' },
    annotation: { type: 'string', multiple: true },
    provenance: { type: 'string' },
    sbom: { type: 'string' },
    attest: { type: 'string', multiple: true },
    iidfile: { type: 'string' },
    'metadata-file': { type: 'string' },
    'cache-dir': { type: 'string' },
    'cache-from': { type: 'string', multiple: true },
    'cache-to': { type: 'string' },
    'cache-max-size': { type: 'string' },
    'per-arch-tags': { type: 'boolean' },
    'merge-platforms': { type: 'string' },
    'merge-id': { type: 'string' },
    call: { type: 'string' },
    check: { type: 'boolean' },
    runtime: { type: 'string' },
    isolation: { type: 'string' },
    'insecure-registry': { type: 'string', multiple: true },
    'registry-mirror': { type: 'string', multiple: true },
    pull: { type: 'boolean' },
    'add-host': { type: 'string', multiple: true },
    'shm-size': { type: 'string' },
    ulimit: { type: 'string', multiple: true },
    allow: { type: 'string', multiple: true },
    'cdi-spec-dir': { type: 'string', multiple: true },
    'docker-media-types': { type: 'boolean' },
    compression: { type: 'string' },
    'compression-level': { type: 'string' },
  });
}

async function run(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseBuildFlags(argv);
  if (positionals.length !== 1) {
    throw new UserError(`slipway build takes exactly one CONTEXT (got ${positionals.length})`, { hint: "for example: slipway build -t app:dev ." });
  }
  refuseUnsupported(values);
  const progressMode = values.quiet ? 'quiet' : values.progress ?? 'auto';
  if (!['auto', 'plain', 'quiet', 'tty', 'rawjson'].includes(progressMode)) throw new UserError(`invalid --progress "${progressMode}": expected auto, tty, plain, quiet or rawjson`);
  const call = values.check ? 'check' : values.call ?? 'build';
  if (!['build', 'check', 'targets', 'outline'].includes(call)) throw new UserError(`invalid --call "${call}": expected build, check, targets or outline`);

  const cacheMax = values['cache-max-size'] === undefined ? undefined : parseSize(values['cache-max-size'], '--cache-max-size');
  // A git or tarball URL, or "-", becomes a directory under the cache dir's tmp/ for this build.
  const prepared = await prepareContext({
    context: positionals[0], file: values.file, cacheDir: values['cache-dir'], cwd: process.cwd(), env: process.env, stdin: () => readFileSync(0),
  });
  try {
    return await buildIn(prepared, values, { io, progressMode, call, cacheMax });
  } finally {
    await prepared.cleanup();
  }
}

type BuildValues = ReturnType<typeof parseBuildFlags>['values'];

async function buildIn(prepared: PreparedContext, values: BuildValues, o: { io: CommandIO; progressMode: string; call: string; cacheMax: number | undefined }): Promise<number> {
  const { io, progressMode, call, cacheMax } = o;
  const inline = prepared.dockerfile;
  const request = makeBuildRequest({
    context: prepared.context,
    file: inline === undefined ? prepared.file : '-',
    stdin: () => inline ?? readFileSync(0, 'utf8'),
    buildArgs: values['build-arg'],
    buildContexts: values['build-context'],
    target: values.target,
    platforms: (values.platform ?? []).flatMap((p) => splitList(p)),
    tags: values.tag,
    labels: values.label,
    outputs: values.output,
    push: values.push,
    noCache: values['no-cache'],
    noCacheFilter: values['no-cache-filter'],
    network: values.network,
    secrets: values.secret,
    ssh: values.ssh,
    cacheDir: values['cache-dir'],
    cacheFrom: values['cache-from'],
    cacheTo: values['cache-to'],
    runtime: values.runtime,
    isolation: values.isolation,
    insecureRegistries: values['insecure-registry'],
    registryMirrors: values['registry-mirror'],
    mirrorConfig: mirrorRulesFromEnv(process.env),
    pull: values.pull,
    addHosts: values['add-host'],
    allow: values.allow,
    cdiSpecDirs: values['cdi-spec-dir'],
    perArchTags: values['per-arch-tags'],
    mergePlatforms: values['merge-platforms'],
    mergeId: values['merge-id'] || (values['merge-platforms'] ? mergeIdFromEnv(process.env) : undefined),
    dockerMediaTypes: values['docker-media-types'],
    compression: values.compression,
    compressionLevel: values['compression-level'],
    load: values.load,
    annotations: values.annotation,
    provenance: values.provenance,
    sbom: values.sbom,
    attest: values.attest,
    cwd: process.cwd(),
    env: process.env,
  });

  if (call === 'check') {
    const report = await runCheck(request, { registry: registryClientOptions(request.insecureRegistries) });
    const { text, status } = formatCheckReport({ ...report, file: relative(process.cwd(), report.file) || report.file });
    io.stdout.write(text);
    return status;
  }
  if (call !== 'build') {
    const host = hostPlatform();
    const plan = planBuild({
      dockerfile: request.dockerfile.contents, path: request.dockerfile.path, buildArgs: request.buildArgs, target: request.target,
      targetPlatform: request.platforms[0] ?? host, buildPlatform: host,
    });
    io.stdout.write(call === 'targets' ? formatTargets(plan) : formatOutline(plan));
    return 0;
  }

  // Files written after the build get their directory now, so a push never succeeds into an ENOENT.
  if (values['metadata-file']) outputDirectory(values['metadata-file'], '--metadata-file');
  if (values.iidfile) outputDirectory(values.iidfile, '--iidfile');
  const live = progressMode === 'tty' || (progressMode === 'auto' && io.isTTY) ? ttyProgress(io.stderr) : undefined;
  const base = live ?? (progressMode === 'quiet' ? quietProgress((m) => io.stderr.write(`WARNING: ${m}\n`))
    : progressMode === 'rawjson' ? rawJsonProgress((t) => io.stderr.write(t)) : plainProgress((t) => io.stderr.write(t)));
  // The build checks' warnings are printed after the build, as buildx prints them (also when it fails).
  let checks = '';
  const progress = { ...base, checks: (_file: string, ws: readonly CheckWarning[]) => { checks = formatBuildWarnings(ws); } };
  const started = performance.now();
  let result;
  try {
    result = await runBuild(request, { progress, registry: registryClientOptions(request.insecureRegistries) });
  } finally {
    live?.stop();
    if (checks && progressMode !== 'quiet') io.stderr.write(checks);
  }
  if (progressMode !== 'rawjson') io.stderr.write(summary(result, (performance.now() - started) / 1000));
  if (values.iidfile) writeFileSync(values.iidfile, result.imageId);
  // Neighbour builds on a shared cache dir may be using what they touched lately: that stays.
  if (cacheMax !== undefined) io.stderr.write(`cache: ${describePrune(await pruneCache(request.cacheDir, { keepBytes: cacheMax, protectMs: 10 * 60_000 }))}\n`);
  if (values['metadata-file']) writeFileSync(values['metadata-file'], JSON.stringify(buildMetadata(result), null, 2) + '\n');
  if (progressMode === 'quiet') io.stdout.write(result.digest + '\n');
  return 0;
}

/** buildx flags slipway takes but cannot honour: one clear refusal each, before any work. */
function refuseUnsupported(values: BuildValues): void {
  if (values['shm-size'] !== undefined) {
    throw new UserError(`--shm-size ${values['shm-size']} is not supported: RUN steps get the runtime's /dev/shm (64 MiB with runc)`, { hint: 'drop --shm-size, or write to a RUN --mount=type=tmpfs,target=/dev/shm,size=… instead if your steps need more' });
  }
  if (values.ulimit?.length) {
    throw new UserError(`--ulimit ${values.ulimit[0]} is not supported: RUN steps inherit slipway's own limits`, { hint: 'raise the limit for the slipway process itself (ulimit -n … in the job) and drop --ulimit' });
  }
}

/** Creates the directory of an output file before the build, or refuses the flag with why. */
function outputDirectory(file: string, flag: string): void {
  try {
    mkdirSync(dirname(resolve(file)), { recursive: true });
  } catch (e) {
    throw new UserError(`${flag} ${file}: cannot create its directory (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { hint: 'give a path in a directory you can write to' });
  }
}

function summary(r: BuildResult, seconds: number): string {
  const recompressed = r.recompressed ? `, ${r.recompressed} layer${r.recompressed === 1 ? '' : 's'} recompressed` : '';
  const lines = [`built ${r.images.map((i) => formatPlatform(i.platform)).join(', ')} in ${seconds.toFixed(1)}s (${r.steps.run} steps run, ${r.steps.cached} cached${recompressed})`, `digest: ${r.digest}`];
  for (const w of r.written) lines.push(`wrote ${w}`);
  for (const p of r.pushed) lines.push(`pushed ${p}`);
  for (const l of r.loaded ?? []) lines.push(`loaded ${l}`);
  if (r.attestations) lines.push(`attested: ${r.attestations.provenance} provenance, ${r.attestations.sbom} SBOM (${r.attestations.referrers.join(', ')})`);
  return lines.join('\n') + '\n';
}

export const buildCommand: Command = { name: 'build', summary: 'Build an image from a Dockerfile', help, run };
