/**
 * action: the GitHub Action's two steps (main.ts builds, post.ts saves the layer cache): action
 * inputs → BuildRequest, log groups per step, outputs and the job summary, the cache scope, and
 * running RUN steps as root through sudo when the runner user is not root.
 */
export { runMain, runPost, cacheSizeBudget } from './run.ts';
export { settingsFromInputs, booleanInput, actionCacheDir, type ActionSettings, type InputReader } from './inputs.ts';
export { defaultCacheScope } from './scope.ts';
export { groupedProgress, escapeData, stepOutputLimit } from './progress.ts';
export { actionOutputs, summaryMarkdown, type SummaryFacts } from './summary.ts';
export {
  decideElevation, requestHasRun, passwordlessSudo, runElevated, readHandedEnv, parseOwner, chownBack, writtenPaths,
  elevatedFlag, ownerVariable, type Elevation, type ElevationFacts,
} from './privilege.ts';
