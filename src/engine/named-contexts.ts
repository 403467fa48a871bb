// Named contexts (`--build-context NAME=VALUE`) as a build uses them: looked up by name as BuildKit's
// dockerui matches it; an image (docker-image://) or an OCI layout as a stage state; a directory (a
// local one after its own .dockerignore, a git checkout, an http download as the file `context`)
// as a source tree for COPY --from and bind mounts, or as a one-layer state for FROM. Git and http
// contexts are fetched once, when a step first needs them.
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, readlink, rename, stat, symlink, utimes } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { loadMatcher, walkContext, type PatternMatcher } from '../dockerfile/index.ts';
import { UserError } from '../errors.ts';
import { checksumEntries, dirTree, fetchGit, fetchRemote, includeList, parseGitSource, planCopy, type SourceTree } from '../fs/index.ts';
import { formatPlatform, isIndexMediaType, platformMatches, sha256, type Descriptor, type ImageConfig, type Manifest, type Platform } from '../oci/index.ts';
import { contextName, type NamedContext } from '../request/index.ts';
import { imageKey, namedContextKey } from './keys.ts';
import type { LayerStore } from './layers.ts';
import { scratchState, type StageState } from './state.ts';
import type { StepCache } from './step-cache.ts';

/** What the contexts need from the build session. */
export interface NamedContextDeps {
  layers: LayerStore;
  steps: StepCache;
  /** The build's scratch dir (made when first asked for). */
  workRoot: () => string;
  /** The cache dir: never part of a context that holds it (as for the build context). */
  cacheDir: string;
  created: string;
  imageState: (ref: string, platform: Platform) => Promise<StageState>;
  reporter: (title: string) => { done(): void; failed(e: unknown): void };
}

interface Materialized { dir: string; matcher?: PatternMatcher }

export class NamedContexts {
  private readonly byName = new Map<string, NamedContext>();
  private readonly deps: NamedContextDeps;
  private readonly dirs = new Map<string, Promise<Materialized>>();
  private readonly copies = new Map<string, Promise<string>>();
  private readonly states = new Map<string, Promise<StageState>>();

  constructor(contexts: NamedContext[], deps: NamedContextDeps) {
    for (const c of contexts) this.byName.set(c.name, c);
    this.deps = deps;
  }

  /** The context a Dockerfile word names (`scratch` and `context` never are: BuildKit's rule). */
  get(word: string): NamedContext | undefined {
    if (this.byName.size === 0 || /^(scratch|context)$/i.test(word)) return undefined;
    const name = contextName(word);
    return name === undefined ? undefined : this.byName.get(name);
  }

  /** The context the planner found for `word` (StageRef kind `context`). */
  named(word: string): NamedContext {
    const c = this.get(word);
    if (!c) throw new Error(`no build context named ${word}`);
    return c;
  }

  /** Whether the context is files (a directory, git, http) rather than an image. */
  isDirectory(c: NamedContext): boolean {
    return c.source.kind === 'local' || c.source.kind === 'git' || c.source.kind === 'http';
  }

  private materialize(c: NamedContext): Promise<Materialized> {
    let p = this.dirs.get(c.name);
    if (!p) {
      p = (async (): Promise<Materialized> => {
        const s = c.source;
        if (s.kind === 'local') return { dir: s.dir, matcher: await loadMatcher(s.dir) };
        const reporter = this.deps.reporter(`[context ${c.name}] load ${c.value}`);
        try {
          let dir: string;
          if (s.kind === 'git') {
            const git = parseGitSource(s.url);
            if (!git) throw new UserError(`build context ${c.name}: ${s.url} is no git URL`);
            dir = (await fetchGit(git, { dir: this.deps.workRoot(), keepGitDir: false, what: `build context ${c.name}`, userConfig: true })).dir;
            if (!(await stat(dir).then((st) => st.isDirectory(), () => false))) {
              throw new UserError(`build context ${c.name}: the repository has no directory ${git.subdir}`, { hint: 'check the subdir after the ref (#ref:subdir or ?subdir=…)' });
            }
          } else if (s.kind === 'http') {
            // BuildKit's http context: the download is one file named `context`, not unpacked.
            const got = await fetchRemote(s.url, { fallbackMtime: 0, dir: await mkdtemp(join(this.deps.workRoot(), 'http-')) }).catch((e: unknown) => {
              if (!(e instanceof UserError)) throw e;
              const message = e.message.replace(/^ADD: /, '');
              throw new UserError(`build context ${c.name}: ${message}`, { hint: e.hint ?? `check that ${s.url} answers; it is fetched when a step first uses the context` });
            });
            dir = await mkdtemp(join(this.deps.workRoot(), 'named-'));
            const file = join(dir, 'context');
            await rename(got.path, file);
            // As BuildKit's http source writes it: mode 0600, mtime from Last-Modified.
            await chmod(file, 0o600);
            await utimes(file, got.mtime, got.mtime);
          } else throw new Error(`named context ${c.name} is an image`);
          reporter.done();
          return { dir };
        } catch (e) {
          reporter.failed(e);
          throw e;
        }
      })();
      this.dirs.set(c.name, p);
    }
    return p;
  }

  /** A directory context's files, as COPY --from reads them. */
  async tree(c: NamedContext): Promise<SourceTree> {
    const { dir, matcher } = await this.materialize(c);
    return dirTree(dir, { describe: `build context ${c.name}`, ...(matcher ? { include: await this.includer(dir, matcher) } : {}) });
  }

  private async includer(dir: string, matcher: PatternMatcher): Promise<(rel: string) => boolean> {
    const cache = cacheDirFilter(dir, this.deps.cacheDir);
    if (!matcher.hasExclusions) return (rel) => !cache(rel) && !matcher.matches(rel);
    // With `!` exceptions an excluded directory stays when something below it is included: a walk tells.
    const included = includeList((await walkContext(dir, matcher)).map((e) => e.path));
    return (rel) => !cache(rel) && included(rel);
  }

  /**
   * A directory context as a directory of its own for a bind mount: a local one after its
   * .dockerignore, linked (else copied) once per build, so a step never sees ignored files.
   */
  bindRoot(c: NamedContext): Promise<string> {
    let p = this.copies.get(c.name);
    if (!p) {
      p = (async () => {
        const { dir, matcher } = await this.materialize(c);
        if (!matcher) return dir;
        return linkedCopy(dir, matcher, this.deps.cacheDir, await mkdtemp(join(this.deps.workRoot(), 'named-copy-')));
      })();
      this.copies.set(c.name, p);
    }
    return p;
  }

  /** The context as a stage state (FROM NAME, an overridden stage, COPY --from of an image context). */
  state(c: NamedContext, platform: Platform): Promise<StageState> {
    const id = `${c.name}|${formatPlatform(platform)}`;
    let p = this.states.get(id);
    if (!p) {
      const s = c.source;
      // docker-image://scratch is the empty filesystem, as in BuildKit.
      p = s.kind === 'image' ? (s.ref === 'scratch' ? Promise.resolve(scratchState(platform)) : this.deps.imageState(s.ref, platform))
        : s.kind === 'oci-layout' ? this.layoutState(c, s.dir, s.digest, platform)
          : this.directoryState(c, platform);
      this.states.set(id, p);
    }
    return p;
  }

  /** A directory as a one-layer image: its files owned by root, as COPY puts them; an empty config. */
  private async directoryState(c: NamedContext, platform: Platform): Promise<StageState> {
    const tree = await this.tree(c);
    const planned = await planCopy({ sources: ['.'], dest: '/', from: tree, mtime: 0 });
    try {
      const key = namedContextKey(await checksumEntries(planned.entries), platform);
      const made = await this.deps.steps.layer(key, async () => ({ entries: planned.entries }));
      const base = scratchState(platform);
      if (!made.layer) return { ...base, key };
      const history = [...(base.config.history ?? []), { created: made.created ?? this.deps.created, created_by: `build context ${c.name}`, comment: 'buildkit.dockerfile.v0' }];
      const config: ImageConfig = { ...base.config, rootfs: { type: 'layers', diff_ids: [made.layer.diffID] }, history };
      return { platform, config, layers: [made.layer], key: made.key };
    } finally {
      await planned.cleanup();
    }
  }

  /** An image of an OCI layout (an index in it narrowed to `platform`); its layer blobs go into the store. */
  private async layoutState(c: NamedContext, dir: string, digest: string, platform: Platform): Promise<StageState> {
    const what = `build context ${c.name} (${c.value})`;
    const reporter = this.deps.reporter(`[context ${c.name}] load metadata for ${c.value}`);
    try {
      const blob = (d: string) => join(dir, 'blobs', ...d.split(':'));
      const read = async (d: string): Promise<Buffer> => {
        const bytes = await readFile(blob(d)).catch(() => { throw new UserError(`${what}: the layout has no blob ${d}`, { hint: 'the OCI layout is incomplete; write it again' }); });
        if (sha256(bytes) !== d) throw new UserError(`${what}: blob ${d} does not match its digest`, { hint: 'the OCI layout is corrupt; write it again' });
        return bytes;
      };
      let manifestDigest = digest;
      let doc = JSON.parse((await read(digest)).toString('utf8')) as { mediaType?: string; manifests?: Array<Descriptor & { platform?: Platform }> } & Partial<Manifest>;
      for (let depth = 0; doc.manifests && depth < 4; depth++) {
        const pick = doc.manifests.find((m) => m.platform && platformMatches(platform, m.platform) && !isIndexMediaType(m.mediaType))
          ?? doc.manifests.find((m) => isIndexMediaType(m.mediaType));
        if (!pick) throw new UserError(`${what}: no image for platform ${formatPlatform(platform)}`, { hint: `the layout holds ${doc.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : m.digest)).join(', ')}` });
        manifestDigest = pick.digest;
        doc = JSON.parse((await read(pick.digest)).toString('utf8')) as typeof doc;
      }
      const manifest = doc as Manifest;
      const config = JSON.parse((await read(manifest.config.digest)).toString('utf8')) as ImageConfig;
      const layers = [];
      for (const [i, d] of manifest.layers.entries()) {
        const diffID = config.rootfs.diff_ids[i];
        if (!diffID) throw new UserError(`${what}: its config lists fewer diff_ids than its manifest has layers`);
        if ((await this.deps.layers.cache.store.size(d.digest)) !== d.size) await this.deps.layers.cache.store.putFile(blob(d.digest), d.digest);
        layers.push({ descriptor: d, diffID });
      }
      reporter.done();
      return { platform, config, layers, key: imageKey(manifestDigest) };
    } catch (e) {
      reporter.failed(e);
      throw e;
    }
  }
}

/**
 * Whether a path of the context directory `dir` is the cache dir or below it: a cache dir kept
 * inside a context (as a GitLab `cache:` path must be) is never part of it, or `COPY . .` would
 * copy it into the image and grow it on every build.
 */
export function cacheDirFilter(dir: string, cacheDir: string): (rel: string) => boolean {
  const cache = relative(dir, cacheDir);
  if (cache === '' || cache.startsWith('..') || isAbsolute(cache)) return () => false;
  return (rel) => rel === cache || rel.startsWith(cache + '/');
}

/**
 * A context directory after its .dockerignore as a directory of its own (`out`), for bind mounts:
 * hard links where the filesystem allows (else copies). Never the context itself, so ignored files
 * stay unseen and a step cannot change the user's files.
 */
export async function linkedCopy(dir: string, matcher: PatternMatcher, cacheDir: string, out: string): Promise<string> {
  const cache = cacheDirFilter(dir, cacheDir);
  for (const e of await walkContext(dir, matcher)) {
    if (cache(e.path)) continue;
    const from = join(dir, e.path);
    const to = join(out, e.path);
    await mkdir(dirname(to), { recursive: true });
    if (e.stat.isDirectory()) await mkdir(to, { recursive: true, mode: e.stat.mode & 0o7777 });
    else if (e.stat.isSymbolicLink()) await symlink(await readlink(from), to);
    else if (e.stat.isFile()) await link(from, to).catch(() => copyFile(from, to));
  }
  return out;
}
