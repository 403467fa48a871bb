// COPY and ADD: sources from the context, heredocs, URLs, git repositories, or another stage or
// image, planned onto the destination as BuildKit's file ops do (see fs/ planCopy). The key needs
// only the sources; the destination's existing tree is read only when the step is not cached.
import { mkdtemp, rm } from 'node:fs/promises';
import { posix } from 'node:path';
import type { ExpandedInstruction } from '../../dockerfile/index.ts';
import { adoptIntoStore, checksumEntries, fetchGit, fetchRemote, fileTree, materializeEntries, normalizeEntries, parseGitSource, planCopy, type CopyPlan, type LayerEntry, type SourceTree } from '../../fs/index.ts';
import { UserError } from '../../errors.ts';
import { copyContentKey, copyFromStateKey, type CopyKeyFlags } from '../keys.ts';
import type { MadeEntries, StepResult } from '../state.ts';
import type { WriteBehind } from '../write-behind.ts';
import { layerBehind, type StepContext } from './context.ts';
import { directorySource, sourceState, sourceTree } from './sources.ts';

type CopyIns = Extract<ExpandedInstruction, { kind: 'COPY' | 'ADD' }>;

function keyFlags(ctx: StepContext, ins: CopyIns): CopyKeyFlags {
  return {
    op: ins.kind, dest: ins.dest, workdir: ctx.state.config.config?.WorkingDir || '/', chown: ins.chown, chmod: ins.chmod, link: ins.link, parents: ins.parents, exclude: ins.exclude,
    ...(ins.kind === 'ADD' && ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
  };
}

function nowOrEpoch(ctx: StepContext): number {
  return ctx.session.request.sourceDateEpoch ?? Math.floor(Date.now() / 1000);
}

/**
 * planCopy's options shared by every source of one COPY/ADD. `bare`: without anything read from the
 * destination's layers (and without --chown, whose names may need them) — for the cache key.
 */
async function copyOptions(ctx: StepContext, ins: CopyIns, opts: { bare?: boolean } = {}) {
  const { session, state } = ctx;
  const chownNeedsNames = ins.chown !== undefined && !/^\d*(:\d*)?$/.test(ins.chown);
  const identity = chownNeedsNames && !opts.bare ? (await session.layers.view(state.layers)).identity() : undefined;
  // Without --link the copy lands on the existing tree (a /tmp keeps its 1777, a home dir its
  // owner), so the layers' headers are read — fetching a base still in its registry.
  const view = !ins.link && state.layers.length > 0 && !opts.bare ? await session.layers.view(state.layers) : undefined;
  return {
    instruction: ins.kind, dest: ins.dest, workdir: state.config.config?.WorkingDir || '/', chown: opts.bare && chownNeedsNames ? undefined : ins.chown, chmod: ins.chmod, link: ins.link,
    parents: ins.parents, exclude: ins.exclude, identity, mtime: nowOrEpoch(ctx),
    existing: view ? async (p: string) => view.stat(p) : undefined,
  };
}

/**
 * COPY --from another stage or an image: the source's state key already names its content, so the
 * key needs no checksum of the files — a cached step reads nothing and extracts nothing.
 */
async function copyFromState(ctx: StepContext, ins: CopyIns, from: string): Promise<StepResult> {
  const source = await sourceState(ctx, from);
  const key = copyFromStateKey(ctx.state.key, source.key, ins.sources, keyFlags(ctx, ins));
  return layerBehind(ctx, key, async (behind) => {
    const tree = await sourceTree(ctx, from);
    const planned = await planCopy({ ...(await copyOptions(ctx, ins)), sources: ins.sources, from: tree });
    return forRun(ctx, { entries: planned.entries, cleanup: planned.cleanup }, behind);
  }, ctx.session.layerOptions(ctx));
}

/** Whether the stage's next step that touches the filesystem is a RUN. */
function runNext({ stage, step }: StepContext): boolean {
  const at = stage.instructions.indexOf(step.source); // -1: an ONBUILD trigger
  if (at === -1) return false;
  return stage.instructions.slice(at + 1).find((i) => i.kind === 'RUN' || i.kind === 'COPY' || i.kind === 'ADD' || i.kind === 'WORKDIR')?.kind === 'RUN';
}

/**
 * Before a RUN on overlay, the copy's files go into a dir of their own, the RUN's top lower dir:
 * the RUN starts once they are there, while the layer is written from that dir (so it holds what
 * the RUN saw), rather than after the layer is written and extracted again. The dir joins the
 * extracted-layer store as that layer when the run of steps ends. Entries the dir cannot hold as
 * extracting would (devices, xattrs) keep the usual order.
 */
async function forRun(ctx: StepContext, made: MadeEntries, behind: WriteBehind): Promise<MadeEntries> {
  const { session } = ctx;
  if (!runNext(ctx)) return made;
  const below = await session.overlayLowers(ctx.state.layers);
  if (!below) return made;
  const dir = await mkdtemp(posix.join(session.workRoot, 'copy-'));
  const entries = await materializeEntries(normalizeEntries(made.entries), dir).catch(async (e: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw e;
  });
  if (!entries) {
    await rm(dir, { recursive: true, force: true });
    return made;
  }
  let diffID: string | undefined;
  behind.deferLast(async () => {
    if (diffID === undefined || !(await adoptIntoStore(session.layers.snapshotsDir, diffID, dir))) await rm(dir, { recursive: true, force: true });
  });
  return {
    ...made, entries, keep: async (written) => { await made.keep?.(written); diffID = written; },
    lowers: { dirs: [...below, dir], unmounted: Promise.resolve() }, writeAfter: behind.nextStarted(),
  };
}

/** One group of sources with the planCopy arguments that select it. */
interface SourceGroup { from: SourceTree; sources: string[]; dest?: string; unpackArchives?: boolean }

async function sourceGroups(ctx: StepContext, ins: CopyIns, cleanups: (() => Promise<void>)[]): Promise<SourceGroup[]> {
  const { session } = ctx;
  const mtime = nowOrEpoch(ctx);
  const groups: SourceGroup[] = [];
  for (const c of ins.contents) {
    const name = posix.basename(c.path) || 'heredoc';
    const data = Buffer.from(c.data);
    groups.push({ sources: [name], from: fileTree(name, { content: { buffer: data }, size: data.length, mode: 0o644, mtime }, `heredoc ${c.path}`) });
  }
  const gitSources = ins.kind === 'ADD' ? ins.sources.filter((s) => parseGitSource(s)) : [];
  for (const source of gitSources) {
    const git = parseGitSource(source)!;
    // ADD --checksum pins the commit, as ?checksum= does; the two must agree (convert_copy.go).
    if (ins.checksum !== undefined) {
      if (git.checksum !== undefined && git.checksum !== ins.checksum) throw new UserError(`checksum mismatch "${ins.checksum}" != "${git.checksum}"`, { hint: 'give the commit once, as --checksum or as ?checksum=' });
      git.checksum = ins.checksum;
    }
    // The repository's files go into the destination directory, as BuildKit's git source does.
    const checkout = await fetchGit(git, { dir: session.workRoot, keepGitDir: ins.keepGitDir });
    cleanups.push(checkout.cleanup);
    groups.push({ sources: ['.'], from: checkout.tree, dest: ins.dest.endsWith('/') ? ins.dest : ins.dest + '/' });
  }
  const urls = ins.kind === 'ADD' ? ins.sources.filter((s) => /^https?:\/\//i.test(s) && !gitSources.includes(s)) : [];
  for (const url of urls) {
    const remote = await fetchRemote(url, { checksum: ins.checksum, fallbackMtime: mtime, dir: session.workRoot });
    cleanups.push(remote.cleanup);
    groups.push({ sources: [remote.name], from: remote.tree, unpackArchives: ins.unpack === true });
  }
  const local = ins.sources.filter((s) => !urls.includes(s) && !gitSources.includes(s));
  if (local.length) groups.push({ sources: local, from: await sourceTree(ctx, ins.from), unpackArchives: ins.kind === 'ADD' && ins.unpack !== false });
  return groups;
}

export async function copyInstruction(ctx: StepContext, ins: CopyIns): Promise<StepResult> {
  // A named directory context is keyed by its files' checksum, as the build context is.
  if (ins.from !== undefined && ins.contents.length === 0 && !directorySource(ctx, ins.from)) return copyFromState(ctx, ins, ins.from);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const groups = await sourceGroups(ctx, ins, cleanups);
    const planAll = async (options: Awaited<ReturnType<typeof copyOptions>>): Promise<LayerEntry[]> => {
      let entries: LayerEntry[] | undefined;
      for (const group of groups) {
        const planned: CopyPlan = await planCopy({ ...options, ...group, dest: group.dest ?? options.dest });
        cleanups.push(planned.cleanup);
        // The first group's list is taken as it is: a copy may plan 200,000 entries.
        if (!entries) entries = planned.entries;
        else for (const e of planned.entries) entries.push(e); // not push(...), for the same reason
      }
      return entries ?? [];
    };
    // The key needs only the sources: what the destination already holds (existing directories'
    // metadata, the users and groups of --chown) follows from the parent state, which is in the key.
    // So a cached step reads nothing of the base image; only a miss plans against it.
    const bareEntries = await planAll(await copyOptions(ctx, ins, { bare: true }));
    const key = copyContentKey(ctx.state.key, await checksumEntries(bareEntries, { hashes: ctx.session.fileHashes() }), keyFlags(ctx, ins));
    return await layerBehind(ctx, key, async (behind) => {
      const full = await copyOptions(ctx, ins);
      return forRun(ctx, { entries: full.existing || full.identity ? await planAll(full) : bareEntries }, behind);
    }, ctx.session.layerOptions(ctx));
  } finally {
    for (const c of cleanups) await c().catch(() => undefined);
  }
}
