// Choosing one platform's manifest out of an index, with one error for a platform it lacks.
import { UserError } from '../errors.ts';
import { formatPlatform, normalizePlatform, platformMatches, type Descriptor, type Index, type Platform } from '../oci/index.ts';
import type { Reference } from './reference.ts';

/** The manifest of `index` for `want`; entries without a real platform (attestations) never match. */
export function selectPlatform(index: Index, want: Platform, ref: Reference | string): Descriptor {
  const images = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const match = images.find((m) => platformMatches(want, m.platform!));
  if (match) return match;
  const available = images.map((m) => formatPlatform(normalizePlatform(m.platform!))).join(', ') || 'none';
  throw new UserError(`${String(ref)} has no image for platform ${formatPlatform(normalizePlatform(want))} (available: ${available})`,
    { hint: 'choose one of the available platforms with --platform' });
}
