/**
 * Summary statistics for benchmark samples: median with min and max over repetitions, and
 * percentiles within one repetition.
 *
 * Sharp edges:
 * - `summarize` of an empty list is undefined, never NaN: a variant that produced no
 *   samples (skipped, failed) stays visibly absent in the tables.
 * - Percentiles use the nearest-rank method on a sorted copy (p99 of 100 samples is the
 *   99th smallest), so they are actual observations, never interpolated.
 */

/** Median with min and max over repetitions (`n` = how many). */
export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: readonly number[]): Summary | undefined {
  const finite = samples.filter((x) => Number.isFinite(x));
  if (finite.length === 0) return undefined;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/** Ratio of two medians (a / b), undefined when either side is missing or b is zero. */
export function ratio(a: Summary | undefined, b: Summary | undefined): number | undefined {
  if (!a || !b || b.median === 0) return undefined;
  return a.median / b.median;
}

/** Round to `digits` significant digits (for compact JSON). */
export function sig(x: number, digits = 4): number {
  if (!Number.isFinite(x) || x === 0) return x;
  return Number(x.toPrecision(digits));
}

/** A Summary with every number rounded to 4 significant digits. */
export function compact(s: Summary | undefined): Summary | undefined {
  return s && { median: sig(s.median), min: sig(s.min), max: sig(s.max), n: s.n };
}

/** A rotation of `items` by `round`: variant order changes every round so drift cancels. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
