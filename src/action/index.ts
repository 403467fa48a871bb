/**
 * action: the GitHub Action's two steps (main.ts builds, post.ts saves the layer cache): action
 * inputs → BuildRequest, log groups per step, outputs and the job summary, the cache scope, and
 * running RUN steps as root through sudo when the runner user is not root. main.ts and post.ts are
 * the bundle's entries; the rest of src/ never imports action/.
 */
export { runMain, runPost } from './run.ts';
