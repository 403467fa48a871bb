// A stage's state between steps, and what a step gives back: the shapes the scheduler, the step
// cache and every step module share.
import type { LayerEntry } from '../fs/index.ts';
import type { ImageConfig, Platform } from '../oci/index.ts';
import { scratchConfig } from './config.ts';
import { scratchKey } from './keys.ts';
import type { LayerRef } from './layers.ts';
import type { WriteBehind } from './write-behind.ts';

/** The filesystem and config of a stage after some of its steps. */
export interface StageState {
  platform: Platform;
  config: ImageConfig;
  layers: LayerRef[];
  /** Cache key of this state: the base's identity and every step so far. */
  key: string;
  /**
   * Layers of this stage still being written (write-behind.ts): `layers` then holds LayerInWriting
   * entries and `config.rootfs` lacks their diffIDs until the scheduler settles the state.
   */
  writing?: Writing;
}

/** The layers of a state still being written, and its files as overlay lower dirs meanwhile. */
export interface Writing {
  behind: WriteBehind;
  /** This state's files as overlay lower dirs, bottom first, once `unmounted`; undefined: not known (settle first). */
  lowers?: string[];
  /** The last step's overlay is unmounted: its upper dir may be mounted as a lower. */
  unmounted: Promise<void>;
}

/**
 * What a filesystem step produced: its state key, its layer, and when it first ran; `writing`: a RUN
 * whose layer is still being written (`layer` is a LayerInWriting).
 */
export interface StepResult { key: string; layer?: LayerRef; cached: boolean; created?: string; writing?: Writing }

/**
 * What a step made: layer entries; `keep`, to call with the written layer's diffID (a RUN keeps its
 * overlay upper dir as that layer's extracted form); and a cleanup once the layer is written.
 */
export interface MadeEntries {
  entries: LayerEntry[];
  keep?: (diffID: string) => Promise<void>;
  cleanup?: () => Promise<void>;
  /** The files after the step as overlay lower dirs (a RUN's lowers and its upper dir), once `unmounted`: the next RUN may start on them. */
  lowers?: { dirs: string[]; unmounted: Promise<void> };
  /** The layer is written once this settles (WriteBehind.nextStarted). */
  writeAfter?: Promise<void>;
}

export function scratchState(platform: Platform): StageState {
  return { platform, config: scratchConfig(platform), layers: [], key: scratchKey(platform) };
}
