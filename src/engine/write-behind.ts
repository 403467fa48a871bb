// Layers written behind the steps: where RUN roots are overlay mounts, a RUN's upper dir is its
// layer's files exactly, so the next RUN can mount it as its top lower dir and run while the layer
// is still being tarred, compressed and hashed (step keys name inputs, not layer digests). BuildKit
// likewise runs the next exec on the previous snapshot and makes layer blobs only at export.
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
 * The layers of one stage's run of RUN steps written behind them, and what waits for them: each
 * step's upper dir stays where the next step's mount names it until the run ends (a lower dir is
 * never renamed under a mount), then moves into the extracted-layer store.
 */
export class WriteBehind {
  private readonly writes: Promise<unknown>[] = [];
  private readonly after: Array<() => Promise<void>> = [];
  private settling: Promise<void> | undefined;

  /** A layer write under way; its failure fails the stage at `settle`. */
  add(write: Promise<unknown>): void {
    write.catch(() => undefined); // seen at settle
    this.writes.push(write);
  }

  /** Work for when the run ends: moving upper dirs into the store, unmounting, removing scratch. */
  defer(work: () => Promise<void>): void {
    this.after.push(work);
  }

  /** Waits for every write, then does the deferred work in order; throws the first write's failure. */
  settle(): Promise<void> {
    this.settling ??= (async () => {
      const results = await Promise.allSettled(this.writes);
      for (const work of this.after) await work().catch(() => undefined); // a cleanup that fails costs disk space only
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
    return this.settling;
  }
}

