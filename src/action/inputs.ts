// The action's inputs (as action.yml names them) → the typed BuildRequest, through the same
// makeBuildRequest the CLI uses. Lists are split like docker/build-push-action's; the `secrets`
// and `secret-files` forms (`id=VALUE`, `id=PATH`) are build-push-action's, not buildx's.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { UserError } from '../errors.ts';
import { mirrorRulesFromEnv } from '../registry/index.ts';
import { makeBuildRequest, mergeIdFromEnv, parseKeyValue, splitList, splitQuoted, type BuildRequest, type SecretSpec } from '../request/index.ts';
import { defaultCacheScope } from './scope.ts';

/** Reads one input by its action.yml name; '' when unset (as @actions/core's getInput). */
export type InputReader = (name: string) => string;

export interface ActionSettings {
  request: BuildRequest;
  /** Persist the layer cache through the Actions cache service. */
  cache: boolean;
  cacheScope: string;
  /** Values to mask in the log: every secret, whole and line by line. */
  masks: string[];
  /** Inputs understood but not acted on (e.g. a cache type we don't have), to print as warnings. */
  warnings: string[];
  /** `check`: run the build checks only (input `call`). */
  call: 'build' | 'check';
}

/** `true`/`false` as YAML 1.2 core schema spells them (what @actions/core accepts), else a UserError. */
export function booleanInput(name: string, text: string, fallback: boolean): boolean {
  const t = text.trim();
  if (t === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(t)) return true;
  if (['false', 'False', 'FALSE'].includes(t)) return false;
  throw new UserError(`input "${name}" is "${t}": expected true or false`);
}

/** The runner's cache directory for the layer cache (one per job, shared by the action's steps). */
export function actionCacheDir(env: Record<string, string | undefined>): string {
  return join(env.RUNNER_TEMP || tmpdir(), 'slipway-cache');
}

/**
 * The `secrets` input's records as build-push-action reads them: one per line, except that a
 * double-quoted record may span lines (a PEM key, say); `""` inside quotes is one `"`.
 */
function secretRecords(text: string): string[] {
  // An unterminated quote runs to the end of the input, as it always has here.
  return splitQuoted(text, '\n').fields.map((r) => r.replace(/\r$/, '')).filter((r) => r.trim() !== '' && !r.trim().startsWith('#'));
}

/** `secrets`: one `id=VALUE` per line (or a quoted multi-line record). */
function inlineSecrets(text: string): SecretSpec[] {
  return secretRecords(text).map((line, i) => {
    // Not parseKeyValue: its error would echo the line, value and all.
    const eq = line.indexOf('=');
    if (eq <= 0) throw new UserError(`invalid line ${i + 1} of the secrets input: expected id=VALUE`, { hint: 'one secret per line, e.g. NPM_TOKEN=${{ secrets.NPM_TOKEN }}' });
    return { id: line.slice(0, eq).trim(), value: Buffer.from(line.slice(eq + 1)) };
  });
}

/** `secret-files`: one `id=PATH` per line, PATH relative to the workspace. */
function fileSecrets(text: string, cwd: string): SecretSpec[] {
  return splitList(text, { commas: false }).map((line) => {
    const kv = parseKeyValue(line, 'secret file');
    if (!kv || kv[0].trim() === '' || kv[1].trim() === '') throw new UserError(`invalid secret-files line "${line}": expected id=PATH`);
    const path = resolve(cwd, kv[1].trim());
    try {
      return { id: kv[0].trim(), value: readFileSync(path) };
    } catch {
      throw new UserError(`secret "${kv[0].trim()}": cannot read file ${path}`, { hint: 'check the path in the secret-files input (relative to the workspace)' });
    }
  });
}

/** Masks: the whole value and each line of it (the runner masks line by line in multi-line output). */
function masksOf(secrets: SecretSpec[]): string[] {
  const out = new Set<string>();
  for (const s of secrets) {
    if (s.value.length > 64 << 10) continue; // a large file is no token; masking it would not help
    const text = s.value.toString('utf8').trim();
    if (text === '') continue;
    out.add(text);
    for (const line of text.split(/\r?\n/)) if (line.trim().length >= 3) out.add(line.trim());
  }
  return [...out];
}

/**
 * Builds the request from the inputs. `env` is the step's environment (build args given as a bare
 * KEY, SOURCE_DATE_EPOCH, HOME, RUNNER_TEMP); `cwd` is the workspace.
 */
/**
 * build-push-action's cache specs: registry ones are ours too; `type=gha` is what the `cache` input
 * does already; other types (local, inline, s3, …) are skipped with a warning, not a failed build.
 */
function registryCaches(specs: string[], input: string, warnings: string[]): string[] {
  return specs.filter((spec) => {
    const type = /(?:^|,)\s*type=([^,]*)/.exec(spec)?.[1]?.trim() ?? 'registry';
    if (type === 'registry') return true;
    if (type !== 'gha') warnings.push(`${input}: type=${type} is not supported and is ignored (registry caches and the cache input are)`);
    return false;
  });
}

/** The `call` input: `build` (default) or `check` (the build checks alone). */
function callInput(text: string): 'build' | 'check' {
  if (text === '' || text === 'build') return 'build';
  if (text === 'check') return 'check';
  throw new UserError(`input "call" is "${text}": expected build or check`, { hint: 'call: check runs the build checks without building' });
}

/**
 * build-push-action's default provenance: mode=max for a public repository, mode=min otherwise
 * (private, or the event payload does not say), when pushing; none with load only.
 */
function defaultProvenance(env: Record<string, string | undefined>): { mode: 'min' | 'max' } {
  try {
    const payload = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH ?? '', 'utf8')) as { repository?: { private?: boolean } };
    return { mode: payload.repository?.private === false ? 'max' : 'min' };
  } catch {
    return { mode: 'min' };
  }
}

/** The provenance's builder id, as build-push-action sets it: the workflow run's URL. */
function builderId(env: Record<string, string | undefined>): string | undefined {
  if (!env.GITHUB_REPOSITORY || !env.GITHUB_RUN_ID) return undefined;
  return `${env.GITHUB_SERVER_URL || 'https://github.com'}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
}

export function settingsFromInputs(input: InputReader, env: Record<string, string | undefined>, cwd: string): ActionSettings {
  const get = (name: string): string => input(name).trim();
  // Secrets are read first so a later input error never leaves one unmasked in an echoed line.
  const secrets = [...inlineSecrets(input('secrets')), ...fileSecrets(input('secret-files'), cwd)];
  const masks = masksOf(secrets);
  const push = booleanInput('push', get('push'), false);
  const warnings: string[] = [];
  const request = makeBuildRequest({
    context: get('context') || '.',
    file: get('file') || undefined,
    buildArgs: splitList(input('build-args'), { commas: false }),
    buildContexts: splitList(input('build-contexts'), { commas: false }),
    target: get('target') || undefined,
    platforms: splitList(input('platforms')),
    tags: splitList(input('tags')),
    labels: splitList(input('labels'), { commas: false }),
    outputs: splitList(input('outputs'), { commas: false }),
    push,
    noCache: booleanInput('no-cache', get('no-cache'), false),
    noCacheFilter: splitList(input('no-cache-filters')),
    network: get('network') || undefined,
    ssh: splitList(input('ssh'), { commas: false }),
    isolation: get('isolation') || undefined,
    allow: splitList(input('allow')),
    registryMirrors: splitList(input('registry-mirrors'), { commas: false }),
    mirrorConfig: mirrorRulesFromEnv(env),
    pull: booleanInput('pull', get('pull'), false),
    sourceDateEpoch: get('source-date-epoch') || undefined,
    perArchTags: booleanInput('per-arch-tags', get('per-arch-tags'), false),
    mergePlatforms: splitList(input('merge-platforms')).join(',') || undefined,
    mergeId: get('merge-id') || (get('merge-platforms') ? mergeIdFromEnv(env) : undefined),
    load: booleanInput('load', get('load'), false),
    annotations: splitList(input('annotations'), { commas: false }),
    provenance: get('provenance') || undefined,
    sbom: get('sbom') || undefined,
    provenanceDefault: defaultProvenance(env),
    cacheDir: actionCacheDir(env),
    // build-push-action's `type=gha` is what the `cache` input already does; registry caches are ours too.
    cacheFrom: registryCaches(splitList(input('cache-from'), { commas: false }), 'cache-from', warnings),
    cacheTo: registryCaches(splitList(input('cache-to'), { commas: false }), 'cache-to', warnings)[0],
    cwd,
    env,
  });
  // Output paths are the workspace's, whatever the process's cwd (and the root process's) is.
  const outputs = request.outputs.map((o) => ('dest' in o ? { ...o, dest: resolve(cwd, o.dest) } : o));
  const id = builderId(env);
  const attest = request.attest && id ? { ...request.attest, builderId: id } : request.attest;
  const withSecrets: BuildRequest = { ...request, outputs, secrets, ...(attest ? { attest } : {}) };
  const ids = new Set<string>();
  for (const s of secrets) {
    if (ids.has(s.id)) throw new UserError(`secret "${s.id}" is given twice (secrets and secret-files share one list of ids)`);
    ids.add(s.id);
  }
  return {
    request: withSecrets,
    cache: booleanInput('cache', get('cache'), true),
    cacheScope: get('cache-scope') || defaultCacheScope(withSecrets, cwd),
    call: callInput(get('call')),
    masks,
    warnings,
  };
}
