// "Did you mean …": nearest known words by edit distance — for unknown commands, options and
// platforms on the command line, unknown Dockerfile flags, and the build checks' suggestions.

/** Levenshtein distance over code points. */
export function editDistance(a: string, b: string): number {
  const as = [...a];
  const bs = [...b];
  const row = Array.from({ length: bs.length + 1 }, (_, j) => j);
  for (let i = 1; i <= as.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= bs.length; j++) {
      const here = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (as[i - 1] === bs[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[bs.length];
}

/** The closest of `known` to `word`, when it is close enough to be a typo (or a prefix of it). */
export function nearest(word: string, known: string[]): string | undefined {
  let best: { w: string; d: number } | undefined;
  for (const k of known) {
    const d = k.startsWith(word) && word.length >= 3 ? 1 : editDistance(word, k);
    if (!best || d < best.d) best = { w: k, d };
  }
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? best.w : undefined;
}

/**
 * BuildKit's util/suggest.Search: the closest option at an edit distance below 3, none for an
 * exact match; case-insensitive matches keep the case the user wrote (all lower or all upper).
 */
export function searchLikeBuildKit(value: string, options: Iterable<string>, caseSensitive: boolean): string | undefined {
  const matchCase = (val: string, orig: string): string => (orig === orig.toLowerCase() ? val.toLowerCase() : orig === orig.toUpperCase() ? val.toUpperCase() : val);
  const v = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let min = 3;
  for (const option of options) {
    const o = caseSensitive ? option : option.toLowerCase();
    if (v === o) return undefined;
    const d = editDistance(v, o);
    if (d < min) { match = caseSensitive ? o : matchCase(o, value); min = d; }
  }
  return match;
}
