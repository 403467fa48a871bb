// The two steps of the action, as functions of the runner's environment: `runMain` (inputs → cache
// restore → build → outputs and job summary) and `runPost` (cache save). Both return an exit code
// and never leave the process to the event loop: the entries end it explicitly (see endProcess).
import * as core from '@actions/core';
import { dirname, relative } from 'node:path';
import { formatCheckReport } from '../checks/index.ts';
import { restoreLayerCache, saveLayerCache, type CacheLog } from './cache/index.ts';
import { prepareActionContext } from './context.ts';
import { runBuild, runCheck, version } from '../launch/index.ts';
import { describeError, UserError } from '../errors.ts';
import { registryOptionsFromEnv } from '../registry/index.ts';
import type { BuildRequest } from '../request/index.ts';
import { booleanInput, settingsFromInputs } from './inputs.ts';
import {
  chownBack, decideElevation, elevatedFlag, ownerVariable, parseOwner, passwordlessSudo, readHandedEnv, requestHasRun, runElevated, writtenPaths,
} from './privilege.ts';
import { checkAnnotation, groupedProgress } from './progress.ts';
import { actionOutputs, summaryMarkdown } from './summary.ts';

/** Most bytes one cache save may hold; least recently used layers go first (GitHub allows 10 GB per repository). */
export const cacheSizeBudget = 2 * 1024 ** 3;

const cacheLog: CacheLog = { info: core.info, warning: core.warning, notice: core.notice };

/** In the process started through sudo: take the environment the entry handed over. */
function adoptHandedEnv(): void {
  const handed = readHandedEnv();
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, handed);
}

function owner(): { uid: number; gid: number } {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

function cacheTimeoutMs(text: string): number {
  const t = text.trim();
  if (t === '') return 120_000;
  if (!/^\d+(\.\d+)?$/.test(t)) throw new UserError(`input "cache-timeout" is "${t}": expected seconds, e.g. 120`);
  return Math.round(Number(t) * 1000);
}

/** `call: check`: the build checks alone, each warning an annotation; fails when any fired (as buildx exits). */
async function runChecksOnly(request: BuildRequest, workspace: string): Promise<number> {
  const registry = registryOptionsFromEnv(process.env, { insecureRegistries: request.insecureRegistries, userAgent: `slipway-action/${version}` });
  const report = await runCheck(request, { registry });
  const file = relative(workspace, request.dockerfile.path);
  for (const w of report.warnings) process.stdout.write(checkAnnotation(file, w));
  core.info(formatCheckReport(report).text);
  if (report.error !== undefined) throw report.error;
  if (report.warnings.length) {
    core.setFailed(`${report.warnings.length === 1 ? '1 build check warning' : `${report.warnings.length} build check warnings`} in ${file}`);
    return 1;
  }
  return 0;
}

export async function runMain(script: string): Promise<number> {
  const elevated = process.env[elevatedFlag] === '1';
  if (elevated) adoptHandedEnv();
  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  let written: string[] = [];
  let cacheDir: string | undefined;
  let postSavesCache = false;
  let cleanupContext = async (): Promise<void> => undefined;
  try {
    // A git or tarball URL in `context` becomes a directory first (see context.ts).
    const context = await prepareActionContext((name) => core.getInput(name), process.env, workspace);
    cleanupContext = context.cleanup;
    const settings = settingsFromInputs(context.input, process.env, workspace);
    for (const m of settings.masks) core.setSecret(m);
    for (const w of settings.warnings) core.warning(w);
    const { request } = settings;
    if (settings.call === 'check') return await runChecksOnly(request, workspace);
    const budgetMs = cacheTimeoutMs(core.getInput('cache-timeout'));

    if (!elevated) {
      const uid = owner().uid;
      // Only the runtime modes want root; rootless and ptrace were asked for as they are.
      const wantsRoot = request.isolation !== 'rootless' && request.isolation !== 'ptrace';
      const hasRun = uid !== 0 && wantsRoot && requestHasRun(request);
      const decision = decideElevation({ uid, elevated, hasRun, sudo: hasRun ? passwordlessSudo() : undefined });
      if (decision.how === 'sudo') {
        core.info(`Running the build as root through sudo (${decision.why}).`);
        return await runElevated(decision.sudo, script, { ...process.env, ...context.env }, owner());
      }
      if (hasRun) core.info(`Building as uid ${uid} (${decision.why}).`);
    }

    let cacheLine: string | undefined;
    cacheDir = request.cacheDir;
    if (settings.cache) {
      const restored = await restoreLayerCache({ dir: request.cacheDir, scope: settings.cacheScope, budgetMs, log: cacheLog });
      cacheLine = restored.outcome === 'hit'
        ? `restored from \`${[restored.layersKey, restored.mountsKey].filter(Boolean).join('`, `')}\` (${restored.blobs} blobs, ${restored.keys} steps, ${(restored.ms / 1000).toFixed(1)} s); scope \`${settings.cacheScope}\``
        : `${restored.outcome === 'miss' ? 'no entry yet' : restored.outcome} for scope \`${settings.cacheScope}\``;
      if (restored.outcome !== 'unavailable') {
        // From here on the post step has something worth saving, even if the build fails.
        core.saveState('cache-dir', request.cacheDir);
        core.saveState('cache-scope', settings.cacheScope);
        // One budget for the whole job: the save gets what the restore left of it.
        core.saveState('cache-timeout-ms', String(Math.max(0, budgetMs - restored.ms)));
        core.saveState('cache-restore', restored.outcome);
        if (elevated) core.saveState('elevated', '1');
        postSavesCache = true;
      }
    }

    written = writtenPaths(request);
    const started = performance.now();
    const progress = groupedProgress((text) => process.stdout.write(text), { warn: (m) => core.warning(m), workspace });
    const registry = registryOptionsFromEnv(process.env, { insecureRegistries: request.insecureRegistries, userAgent: `slipway-action/${version}` });
    const result = await runBuild(request, { progress, registry });
    const seconds = (performance.now() - started) / 1000;

    for (const [name, value] of Object.entries(actionOutputs(result))) core.setOutput(name, value);
    core.info(`digest: ${result.digest}`);
    for (const p of result.pushed) core.info(`pushed ${p}`);
    core.info(`${result.steps.run} steps run, ${result.steps.cached} cached, in ${seconds.toFixed(1)} s`);
    await core.summary.addRaw(summaryMarkdown({ result, seconds, cache: cacheLine }), true).write();
    return 0;
  } catch (err) {
    core.setFailed(describeError(err));
    return 1;
  } finally {
    await cleanupContext().catch(() => undefined);
    if (elevated) {
      handBack(written, workspace);
      // The post step hands the cache dir back after saving it; when it won't, do it now.
      if (cacheDir && !postSavesCache) handBack([cacheDir], dirname(cacheDir));
    }
  }
}

/** In the root process: give what it wrote under `root` back to the runner's user. */
function handBack(paths: string[], root: string): void {
  const to = parseOwner(process.env[ownerVariable]);
  if (!to || paths.length === 0) return;
  try {
    chownBack(paths, root, to);
  } catch (err) {
    core.warning(`could not give ${paths.join(', ')} back to uid ${to.uid}: ${describeError(err)}`);
  }
}

/**
 * The save's share of the job's cache budget (what the restore left), or why there is none: after a
 * restore that failed or ran out of time the service has had its one warning and its whole budget.
 */
export function saveBudgetMs(leftText: string, restoreOutcome: string): number | string {
  if (restoreOutcome === 'timeout' || restoreOutcome === 'failed') return 'the cache service already failed during the restore';
  const left = leftText.trim() === '' ? 120_000 : Number(leftText);
  if (!Number.isFinite(left) || left <= 0) return 'the restore used the whole cache-timeout budget';
  return left;
}

export async function runPost(script: string): Promise<number> {
  const elevated = process.env[elevatedFlag] === '1';
  try {
    if (elevated) adoptHandedEnv();
    const dir = core.getState('cache-dir');
    if (!dir) {
      core.info('Layer cache: nothing to save (the cache is off, or the build step stopped before restoring it).');
      return 0;
    }
    if (!booleanInput('cache', core.getInput('cache'), true)) return 0;
    if (!elevated && core.getState('elevated') === '1' && owner().uid !== 0) {
      // The build ran as root, so the cache dir is root's: save it as root too, then hand it back.
      const sudo = passwordlessSudo();
      if (!sudo) {
        core.warning('Layer cache: not saved, the cache directory belongs to root and sudo is no longer available.');
        return 0;
      }
      await runElevated(sudo, script, process.env, owner());
      return 0;
    }
    const left = saveBudgetMs(core.getState('cache-timeout-ms'), core.getState('cache-restore'));
    if (typeof left === 'string') {
      core.info(`Layer cache: not saved, ${left}.`);
      return 0;
    }
    await saveLayerCache({ dir, scope: core.getState('cache-scope'), budgetMs: left, sizeBudgetBytes: cacheSizeBudget, log: cacheLog });
    if (elevated) {
      const to = parseOwner(process.env[ownerVariable]);
      if (to) chownBack([dir], dirname(dir), to);
    }
  } catch (err) {
    core.warning(`Layer cache: not saved (${describeError(err)}); the build result is unaffected.`);
  }
  return 0;
}
