// `RUN --mount=type=cache` directories: they persist with the cache dir (`mounts/`), and steps of
// one build share them as the mount's `sharing` says.
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export class CacheMounts {
  private readonly root: string;
  private readonly users = new Map<string, { count: number; queue: Promise<void> }>();

  constructor(cacheDir: string) {
    this.root = join(cacheDir, 'mounts');
  }

  /**
   * Host directory behind `id`. Named by a hash of the id, so no id (`..`, `a/b`) can reach outside
   * `mounts/`. `created` tells the caller to set the mount's mode and owner, which BuildKit applies
   * only when it creates the directory.
   */
  async dir(id: string): Promise<{ dir: string; created: boolean }> {
    const dir = join(this.root, createHash('sha256').update(id).digest('hex').slice(0, 32));
    const created = (await mkdir(dir, { recursive: true })) !== undefined;
    return { dir, created };
  }

  /**
   * Takes `id` for one step: `locked` waits for other users to finish, `private` gets told it is
   * busy (and uses a throwaway directory) while another step has it, `shared` never waits.
   */
  async use(id: string, sharing: 'shared' | 'private' | 'locked'): Promise<{ busy: boolean; release: () => void }> {
    const users = this.users.get(id) ?? { count: 0, queue: Promise.resolve() };
    this.users.set(id, users);
    const busy = users.count > 0;
    if (sharing === 'locked') {
      let release!: () => void;
      const turn = users.queue;
      users.queue = new Promise<void>((resolve) => { release = resolve; });
      await turn;
      users.count++;
      return { busy: false, release: () => { users.count--; release(); } };
    }
    users.count++;
    return { busy, release: () => { users.count--; } };
  }
}
