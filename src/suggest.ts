// "Did you mean …": the nearest known word by edit distance, for unknown commands, options and
// platforms (as docker's CLI suggests commands).

/** Levenshtein distance, small strings only. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const here = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = here;
    }
  }
  return row[b.length];
}

/** The closest of `known` to `word`, when it is close enough to be a typo (or a prefix). */
export function nearest(word: string, known: string[]): string | undefined {
  let best: { w: string; d: number } | undefined;
  for (const k of known) {
    const d = k.startsWith(word) && word.length >= 3 ? 1 : distance(word, k);
    if (!best || d < best.d) best = { w: k, d };
  }
  return best && best.d <= Math.max(2, Math.floor(word.length / 3)) ? best.w : undefined;
}
