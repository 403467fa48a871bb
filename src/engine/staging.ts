// Layers sent to the push's repositories while later steps still run: a layer the image will hold
// goes up as soon as its step has made it, into an upload session that only the push's PUT
// publishes (so a build that fails publishes nothing: its sessions are cancelled). The push then
// costs a PUT per layer instead of the whole upload after the last step.
import type { BuildPlan, PlannedStage } from '../dockerfile/index.ts';
import { stageId, type StageId } from './image-stages.ts';
import type { LayerRef } from './layers.ts';
import type { RegistryPort, StagedBlob } from './ports.ts';

/** Uploads sent at once ahead of the push: the steps still running need the machine too. */
const AT_ONCE = 2;
/**
 * Smaller layers wait for the push: there, four go up at once in a round trip or two each, and
 * sending them ahead would only add requests while the steps run.
 */
const SMALLEST = 1 << 20;

type Stager = NonNullable<RegistryPort['stageBlob']>;

export class LayerStaging {
  private readonly stageBlob: Stager;
  private readonly repositories: string[];
  private readonly open: (layer: LayerRef) => AsyncIterable<Uint8Array>;
  /** The stages whose layers the images hold (image-stages.ts). */
  private readonly inImages: Set<StageId>;
  private readonly staged = new Map<string, Promise<StagedBlob>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private closed = false;

  constructor(stageBlob: Stager, repositories: string[], inImages: Set<StageId>, open: (layer: LayerRef) => AsyncIterable<Uint8Array>) {
    this.stageBlob = stageBlob;
    this.repositories = repositories;
    this.inImages = inImages;
    this.open = open;
  }

  /** A step of `stage` made `layer`: sends it ahead when the images hold it. */
  made(plan: BuildPlan, stage: PlannedStage, layer: LayerRef): void {
    if (layer.descriptor.size < SMALLEST || !this.inImages.has(stageId(plan, stage))) return;
    for (const repo of this.repositories) {
      const id = `${repo}@${layer.descriptor.digest}`;
      if (this.staged.has(id)) continue;
      this.staged.set(id, this.turn().then(() => {
        if (this.closed) {
          this.next();
          return unsent;
        }
        const s = this.stageBlob(repo, layer.descriptor, () => this.open(layer), layer.repository);
        // The turn ends when the bytes are sent (or sending failed), not when they are published.
        void s.sent.finally(() => this.next());
        return s;
      }));
    }
  }

  /** The staged upload of `digest` into `repo`, taken out: the push publishes it. */
  take(repo: string, digest: string): Promise<StagedBlob> | undefined {
    const id = `${repo}@${digest}`;
    const s = this.staged.get(id);
    this.staged.delete(id);
    return s;
  }

  /** Cancels what was sent but never taken (a failed build; a layer no image pushed). */
  async release(): Promise<void> {
    this.closed = true;
    const left = [...this.staged.values()];
    this.staged.clear();
    await Promise.all(left.map(async (s) => (await s).release().catch(() => undefined)));
  }

  private turn(): Promise<void> {
    if (this.running < AT_ONCE) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private next(): void {
    const go = this.waiting.shift();
    if (go) go();
    else this.running--;
  }
}

const unsent: StagedBlob = { sent: Promise.resolve(), push: () => Promise.reject(new Error('the build ended before this layer was sent')), release: () => Promise.resolve() };
