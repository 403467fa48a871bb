// A stage's state between steps, and what a step gives back: the shapes the scheduler, the step
// cache and every step module share.
import type { LayerEntry } from '../fs/index.ts';
import type { ImageConfig, Platform } from '../oci/index.ts';
import { scratchConfig } from './config.ts';
import { scratchKey } from './keys.ts';
import type { LayerRef } from './layers.ts';

/** The filesystem and config of a stage after some of its steps. */
export interface StageState {
  platform: Platform;
  config: ImageConfig;
  layers: LayerRef[];
  /** Cache key of this state: the base's identity and every step so far. */
  key: string;
}

/** What a filesystem step produced: its state key, its layer, and when it first ran. */
export interface StepResult { key: string; layer?: LayerRef; cached: boolean; created?: string }

/**
 * What a step made: layer entries; `keep`, to call with the written layer's diffID (a RUN keeps its
 * overlay upper dir as that layer's extracted form); and a cleanup once the layer is written.
 */
export interface MadeEntries { entries: LayerEntry[]; keep?: (diffID: string) => Promise<void>; cleanup?: () => Promise<void> }

export function scratchState(platform: Platform): StageState {
  return { platform, config: scratchConfig(platform), layers: [], key: scratchKey(platform) };
}
