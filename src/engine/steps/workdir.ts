// WORKDIR creates its directory (and missing parents, 0755, owned by USER) as BuildKit's mkdir does;
// on a directory that exists the layer is empty, as BuildKit's is. What exists is read from the
// layers' headers (fetching a base still in its registry) only when the step is not cached.
import type { ExpandedInstruction } from '../../dockerfile/index.ts';
import { resolveChown } from '../../fs/index.ts';
import { applyInstruction } from '../config.ts';
import { workdirKey } from '../keys.ts';
import type { StageState, StepResult } from '../state.ts';
import { withStep, type StepContext } from './context.ts';

type WorkdirIns = Extract<ExpandedInstruction, { kind: 'WORKDIR' }>;

export async function workdirStep(ctx: StepContext, ins: WorkdirIns, cmdSet: boolean): Promise<StageState> {
  const config = applyInstruction(ctx.state.config.config ?? {}, ins, cmdSet);
  const made = await workdirLayer(ctx, ins.path);
  return withStep(ctx, { ...made, config });
}

async function workdirLayer(ctx: StepContext, path: string): Promise<StepResult> {
  const { session, state } = ctx;
  const user = state.config.config?.User ?? '';
  const key = workdirKey({ parent: state.key, path, user });
  const result = await session.steps.layer(key, async () => {
    const view = await session.layers.view(state.layers);
    const parts = path.split('/').filter(Boolean);
    const missing: string[] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (!view.stat(p)) missing.push(p);
    }
    const owner = user && missing.length ? resolveChown(user, view.identity()) : { uid: 0, gid: 0 };
    const mtime = session.request.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
    return { entries: missing.map((p) => ({ path: p, type: 'dir' as const, mode: 0o755, uid: owner.uid, gid: owner.gid, mtime })) };
  }, session.layerOptions(ctx));
  return { ...result, cached: false };
}
