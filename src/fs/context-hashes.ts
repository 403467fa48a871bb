// What a build knows of its context's files from earlier builds, in the cache dir: the per-file
// index (hashes.json: content digest by file identity) and, above it, the checksum of each whole
// source list a step took — a COPY's files, a bind mount's — by one digest of every entry's path,
// metadata and file identity (sums.json). A build with nothing changed gets each COPY's key from
// the list alone and never loads the per-file index: a line per file, tens of ms for 10,000 files.
// Both trust the same identities under the same racy rule, so a list's checksum is exactly the one
// its files' digests would give.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../write-all.ts';
import { FileHashIndex, racyAt } from './hash-index.ts';

/** Lists remembered (the most recently used): one per COPY of each context a cache dir serves. */
const keepLists = 512;

/** The file: a header line, then one JSON line per list: [list digest, checksum, newest change in ns]. */
interface Header { version: 1; savedAtNs: string }

interface ListSum { checksum: string; newestNs: string }

const listShape = /^[0-9a-f]{64}$/;
const checksumShape = /^sha256:[0-9a-f]{64}$/;
const decimal = /^\d+$/;

export class ContextHashes {
  private readonly dir: string;
  private index: Promise<FileHashIndex> | undefined;
  private lists: Map<string, ListSum> | undefined;
  private listsChanged = false;

  /** Nothing is read until asked for. */
  constructor(cacheDir: string) {
    this.dir = cacheDir;
  }

  /** The per-file index, loaded on first use. */
  files(): Promise<FileHashIndex> {
    this.index ??= FileHashIndex.load(join(this.dir, 'hashes.json'));
    return this.index;
  }

  /** The checksum remembered for the list whose digest is `list`, if one can be trusted. */
  listChecksum(list: string): string | undefined {
    const lists = this.loadLists();
    const known = lists.get(list);
    if (!known) return undefined;
    // Most recently used last, so kept when the file is cut down; not a reason to write it.
    lists.delete(list);
    lists.set(list, known);
    return known.checksum;
  }

  /**
   * Remembers `checksum` for the list `list`, whose files all had their digests checked against
   * their identities; `newestNs`: the latest mtime or ctime among them.
   */
  rememberList(list: string, checksum: string, newestNs: string): void {
    const lists = this.loadLists();
    lists.delete(list);
    lists.set(list, { checksum, newestNs });
    this.listsChanged = true;
  }

  /** Writes what this build learned (temp + rename); a failure costs only speed next time. */
  async save(): Promise<void> {
    if (this.index) await (await this.index).save();
    if (!this.lists || !this.listsChanged) return;
    const lines = [JSON.stringify({ version: 1, savedAtNs: String(BigInt(Date.now()) * 1_000_000n) } satisfies Header)];
    for (const [list, { checksum, newestNs }] of [...this.lists].slice(-keepLists).reverse()) lines.push(JSON.stringify([list, checksum, newestNs]));
    await writeFileAtomic(join(this.dir, 'sums.json'), lines.join('\n') + '\n');
  }

  /** sums.json, small enough to read at once; racy lists are dropped here (see `racyAt`). */
  private loadLists(): Map<string, ListSum> {
    if (this.lists) return this.lists;
    const lists = new Map<string, ListSum>();
    try {
      const [first, ...rest] = readFileSync(join(this.dir, 'sums.json'), 'utf8').split('\n');
      const h = JSON.parse(first) as Header;
      if (h?.version === 1 && typeof h.savedAtNs === 'string' && decimal.test(h.savedAtNs)) {
        const savedAtNs = BigInt(h.savedAtNs);
        // Written most recent first; a Map keeps insertion order, so read back oldest first.
        for (const line of rest.reverse()) {
          if (!line) continue;
          const [list, checksum, newestNs] = JSON.parse(line) as unknown[];
          if (typeof list !== 'string' || !listShape.test(list) || typeof checksum !== 'string' || !checksumShape.test(checksum) || typeof newestNs !== 'string' || !decimal.test(newestNs)) continue;
          if (!racyAt(newestNs, savedAtNs)) lists.set(list, { checksum, newestNs });
        }
      }
    } catch { lists.clear(); /* none yet, or not ours */ }
    this.lists = lists;
    return lists;
  }
}
