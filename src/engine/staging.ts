// Layers sent to the push's repositories while later steps still run: a layer the image will hold
// goes up as its step writes it (or, where the registry port cannot follow a blob being written,
// once it is made), into an upload session that only the push's PUT publishes (so a build that
// fails publishes nothing: its sessions are cancelled). The push then costs a PUT per layer
// instead of the whole upload after the last step.
import type { BuildPlan, PlannedStage } from '../dockerfile/index.ts';
import type { GrowingBlob } from '../fs/index.ts';
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
type GrowingStager = NonNullable<RegistryPort['stageGrowingBlob']>;

export class LayerStaging {
  private readonly stageBlob: Stager;
  private readonly stageGrowing: GrowingStager | undefined;
  private readonly repositories: string[];
  private readonly open: (layer: LayerRef) => AsyncIterable<Uint8Array>;
  /** The stages whose layers the images hold (image-stages.ts). */
  private readonly inImages: Set<StageId>;
  private readonly staged = new Map<string, Promise<StagedBlob>>();
  /** Uploads of layers still being written, until `staged` holds them under their digest. */
  private readonly following = new Set<Promise<StagedBlob>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private closed = false;

  constructor(stageBlob: Stager, repositories: string[], inImages: Set<StageId>, open: (layer: LayerRef) => AsyncIterable<Uint8Array>, stageGrowing?: GrowingStager) {
    this.stageBlob = stageBlob;
    this.stageGrowing = stageGrowing;
    this.repositories = repositories;
    this.inImages = inImages;
    this.open = open;
  }

  /** Whether layers of `stage` are sent as they are written (`growing`): the images hold them, and the port can. */
  follows(plan: BuildPlan, stage: PlannedStage): boolean {
    return this.stageGrowing !== undefined && this.inImages.has(stageId(plan, stage));
  }

  /**
   * A step of `stage` is writing a layer the images hold: it goes up as it is written once it has
   * grown past SMALLEST, and `made` then finds it under its digest. The turn is held while the
   * writer works: the upload follows it, at most as fast.
   */
  growing(plan: BuildPlan, stage: PlannedStage, blob: GrowingBlob): void {
    const stageGrowing = this.stageGrowing;
    if (!stageGrowing || !this.follows(plan, stage)) return;
    const final = blob.done.then((r) => ({ mediaType: r.mediaType, digest: r.digest, size: r.size }));
    final.catch(() => undefined); // the step reports a failed write
    void blob.reached(SMALLEST).then((big) => {
      if (!big || this.closed) return;
      for (const repo of this.repositories) {
        const s = this.send(() => stageGrowing(repo, () => blob.read(), final));
        // Known by digest once written, before the step's result reaches `made`. (A failed write
        // fails the upload, which cancels itself; once closed, `release` has taken it from here.)
        this.following.add(s);
        void final.then((d) => { if (!this.closed) this.staged.set(`${repo}@${d.digest}`, s); }, () => undefined)
          .finally(() => this.following.delete(s));
      }
    });
  }

  /** A step of `stage` made `layer`: sends it ahead when the images hold it. */
  made(plan: BuildPlan, stage: PlannedStage, layer: LayerRef): void {
    if (layer.descriptor.size < SMALLEST || !this.inImages.has(stageId(plan, stage))) return;
    for (const repo of this.repositories) {
      const id = `${repo}@${layer.descriptor.digest}`;
      if (this.staged.has(id)) continue;
      this.staged.set(id, this.send(() => this.stageBlob(repo, layer.descriptor, () => this.open(layer), layer.repository)));
    }
  }

  /** `start`ed in its turn; the turn ends when the bytes are sent (or sending failed), not when they are published. */
  private async send(start: () => StagedBlob): Promise<StagedBlob> {
    await this.turn();
    if (this.closed) {
      this.next();
      return unsent;
    }
    const s = start();
    void s.sent.finally(() => this.next());
    return s;
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
    const left = [...this.staged.values(), ...this.following];
    this.staged.clear();
    this.following.clear();
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
