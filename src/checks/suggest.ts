// "did you mean …?": the closest option within an edit distance below 3, as BuildKit's
// util/suggest.Search picks it (an exact match means no suggestion).

function levenshtein(a: string, b: string): number {
  const as = [...a];
  const bs = [...b];
  let prev = Array.from({ length: bs.length + 1 }, (_, j) => j);
  for (let i = 1; i <= as.length; i++) {
    const cur = [i];
    for (let j = 1; j <= bs.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (as[i - 1] === bs[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[bs.length];
}

const matchCase = (val: string, orig: string): string => (orig === orig.toLowerCase() ? val.toLowerCase() : orig === orig.toUpperCase() ? val.toUpperCase() : val);

export function search(value: string, options: Iterable<string>, caseSensitive: boolean): string | undefined {
  const v = caseSensitive ? value : value.toLowerCase();
  let match: string | undefined;
  let min = 3;
  for (const option of options) {
    const o = caseSensitive ? option : option.toLowerCase();
    if (v === o) return undefined;
    const d = levenshtein(v, o);
    if (d < min) { match = caseSensitive ? o : matchCase(o, value); min = d; }
  }
  return match;
}
