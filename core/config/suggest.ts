/**
 * "Did you mean" suggestions for misspelt keys, plugin types and references.
 *
 * @module
 */

/**
 * Damerau-Levenshtein distance (optimal string alignment): insertions,
 * deletions, substitutions and swaps of two neighbours each cost 1.
 *
 * @example
 * ```ts
 * import { editDistance } from "./suggest.ts";
 * editDistance("workrs", "workers"); // 1
 * editDistance("wokrers", "workers"); // 1
 * ```
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  // Three rolling rows: the swap rule looks two rows back.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, before[j - 2]! + 1);
      }
      current[j] = best;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}

/**
 * The candidate closest to `word`, or `undefined` when none is close enough
 * to be a likely typo: at most one edit per three characters (and at least
 * one), ignoring case. Ties go to the earlier candidate.
 *
 * @example
 * ```ts
 * import { closest } from "./suggest.ts";
 * closest("simulatd", ["serial", "simulated"]); // "simulated"
 * closest("foo", ["serial", "simulated"]); // undefined
 * ```
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    if (candidate === word) continue;
    const d = editDistance(lower, candidate.toLowerCase());
    const limit = Math.max(1, Math.floor(Math.max(word.length, candidate.length) / 3));
    if (d <= limit && d < Math.min(word.length, candidate.length) && d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** `"a", "b", "c"`: names quoted and joined, for messages. */
export function quoteList(names: Iterable<string>): string {
  return [...names].map((n) => JSON.stringify(n)).join(", ");
}

/**
 * `; did you mean "x"?` when a candidate is close to `word`, else `""`.
 *
 * @example
 * ```ts
 * import { didYouMean } from "./suggest.ts";
 * `Device "boilr" is not defined${didYouMean("boilr", ["boiler"])}`;
 * // 'Device "boilr" is not defined; did you mean "boiler"?'
 * ```
 */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  const match = closest(word, candidates);
  return match === undefined ? "" : `; did you mean ${JSON.stringify(match)}?`;
}

/**
 * The message for an unknown key: a suggestion when one is close, else the
 * list of valid keys.
 *
 * @example
 * ```ts
 * import { unknownKeyMessage } from "./suggest.ts";
 * unknownKeyMessage("workrs", ["from", "workers"]); // 'Unknown key "workrs"; did you mean "workers"?'
 * unknownKeyMessage("foo", ["a", "b"]); // 'Unknown key "foo"; valid keys are "a", "b"'
 * ```
 */
export function unknownKeyMessage(key: string, validKeys: readonly string[]): string {
  const head = `Unknown key ${JSON.stringify(key)}`;
  const hint = didYouMean(key, validKeys);
  if (hint) return head + hint;
  if (validKeys.length === 0) return `${head}; this block takes no keys`;
  if (validKeys.length === 1) return `${head}; the only valid key is ${quoteList(validKeys)}`;
  return `${head}; valid keys are ${quoteList(validKeys)}`;
}
