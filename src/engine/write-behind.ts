// Layers written behind the steps: where RUN roots are overlay mounts, a RUN's upper dir is its
// layer's files exactly, so the next RUN can mount it as its top lower dir and run while the layer
// is still being tarred, compressed and hashed (step keys name inputs, not layer digests); a COPY
// before a RUN makes its files in a dir of their own for that. BuildKit likewise runs the next exec
// on the previous snapshot and makes layer blobs only at export.
import type { Descriptor } from '../oci/index.ts';
import type { LayerRef } from './layers.ts';

/**
 * A RUN's layer while it is being written. Its descriptor and diffID throw until then: only the
 * stage's own next steps see it (the scheduler settles a stage before anything else reads it).
 */
export class LayerInWriting implements LayerRef {
  /** The layer once written. */
  readonly done: Promise<LayerRef>;
  private written: LayerRef | undefined;

  constructor(done: Promise<LayerRef>) {
    this.done = done;
    done.then((l) => { this.written = l; }, () => undefined);
  }

  get descriptor(): Descriptor { return this.ref().descriptor; }
  get diffID(): string { return this.ref().diffID; }
  get repository(): string | undefined { return this.written?.repository; }

  private ref(): LayerRef {
    if (!this.written) throw new Error('internal: a layer still being written was read before its stage settled');
    return this.written;
  }
}

/**
 * The layers of one stage's run of RUN steps (and the COPY before them) written behind them, and
 * what waits for them: each step's upper dir, and the COPY's dir, stays where the next step's mount
 * names it until the run ends (a lower dir is never renamed under a mount), then moves into the
 * extracted-layer store.
 */
export class WriteBehind {
  private readonly writes: Promise<unknown>[] = [];
  private readonly after: Array<() => Promise<void>> = [];
  private readonly last: Array<() => Promise<void>> = [];
  private waiting: Array<() => void> = [];
  private settling: Promise<void> | undefined;

  /**
   * When a step's layer write may start: once the next step's process is started (its start-up,
   * an overlay mount and a runtime's, needs this thread more than the write does, which then runs
   * while that process works), or the run ends.
   */
  nextStarted(): Promise<void> {
    if (this.settling) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** The next step's process is started: the writes waiting for it go. */
  started(): void {
    for (const go of this.waiting.splice(0)) go();
  }

  /** A layer write under way; its failure fails the stage at `settle`. */
  add(write: Promise<unknown>): void {
    write.catch(() => undefined); // seen at settle
    this.writes.push(write);
  }

  /** Work for when the run ends: moving upper dirs into the store, unmounting, removing scratch. */
  defer(work: () => Promise<void>): void {
    this.after.push(work);
  }

  /** Work for after every `defer`red one: for a lower dir of the run's mounts, which are unmounted by then. */
  deferLast(work: () => Promise<void>): void {
    this.last.push(work);
  }

  /** Waits for every write, then does the deferred work in order; throws the first write's failure. */
  settle(): Promise<void> {
    this.settling ??= (async () => {
      this.started();
      const results = await Promise.allSettled(this.writes);
      for (const work of [...this.after, ...this.last]) await work().catch(() => undefined); // a cleanup that fails costs disk space only
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
    return this.settling;
  }
}

