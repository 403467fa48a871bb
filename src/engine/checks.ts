// The build checks in a build (and for `--check`): run with the session's base images, which the
// stages then reuse, and its .dockerignore; warnings go to the progress, and `error=true` in the
// Dockerfile's check directive fails the build before any step runs, as BuildKit does.
import { formatShort, mergeWarnings, runChecks, type CheckReport, type ResolveBase } from '../checks/index.ts';
import { loadMatcher, type BuildPlan, type PatternMatcher } from '../dockerfile/index.ts';
import { hostPlatform, type ImageConfig, type Platform } from '../oci/index.ts';
import { contextLookup, type BuildRequest } from '../request/index.ts';
import { defaultPath } from '../runtime/index.ts';
import type { RegistryPort } from './ports.ts';
import type { Progress } from './progress.ts';

export interface CheckRun {
  request: BuildRequest;
  targetPlatform: Platform;
  buildPlatform: Platform;
  /** `--check` without --target: every stage. */
  allStages: boolean;
  resolve?: ResolveBase;
  ignore?: PatternMatcher;
  /** The build's plan for these platforms: not made again. */
  plan?: BuildPlan;
}

export function checkOnce(run: CheckRun): Promise<CheckReport> {
  const { request } = run;
  return runChecks({
    dockerfile: request.dockerfile.contents, path: request.dockerfile.path, buildArgs: request.buildArgs, target: request.target,
    targetPlatform: run.targetPlatform, buildPlatform: run.buildPlatform, allStages: run.allStages, resolve: run.resolve, ignore: run.ignore, defaultPath,
    namedContext: contextLookup(request.namedContexts ?? []), plan: run.plan,
  });
}

/** A resolver over the registry port: the platform and environment of the base's config. */
export function resolverOf(resolve: ((ref: string, platform: Platform) => Promise<{ config: ImageConfig }>) | undefined): ResolveBase | undefined {
  if (!resolve) return undefined;
  return async (ref, platform) => {
    const { config } = await resolve(ref, platform);
    return {
      env: config.config?.Env, workingDir: config.config?.WorkingDir, shell: config.config?.Shell,
      ...(config.os ? { platform: { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) } } : {}),
    };
  };
}

/** Checks every plan of a build; reports the warnings; throws the error=true violation. Returns the short forms. */
export async function buildChecks(plans: BuildPlan[], run: Omit<CheckRun, 'targetPlatform' | 'buildPlatform' | 'allStages'>, progress: Progress): Promise<string[]> {
  const reports = await Promise.all(plans.map((plan) => checkOnce({ ...run, targetPlatform: plan.targetPlatform, buildPlatform: plan.buildPlatform, allStages: false, plan })));
  const configError = reports.find((r) => r.configError)?.configError;
  if (configError) throw configError;
  const warnings = mergeWarnings(reports.map((r) => r.warnings));
  if (warnings.length) {
    if (progress.checks) progress.checks(run.request.dockerfile.path, warnings);
    else for (const w of warnings) progress.warn(formatShort(w));
  }
  const violation = reports.find((r) => r.violation)?.violation;
  if (violation) throw violation;
  return warnings.map(formatShort);
}


/** `--check` / `--call check`: the checks alone, every stage unless a target is given, bases resolved where the registry can. */
export async function check(request: BuildRequest, deps: { registry?: RegistryPort; buildPlatform?: Platform }): Promise<CheckReport> {
  const buildPlatform = deps.buildPlatform ?? hostPlatform();
  const registry = deps.registry;
  return checkOnce({
    request, targetPlatform: request.platforms[0] ?? buildPlatform, buildPlatform, allStages: true,
    resolve: resolverOf(registry ? (ref, p) => registry.resolve(ref, p) : undefined), ignore: await loadMatcher(request.contextDir, request.dockerfile.path),
  });
}
