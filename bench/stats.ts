// Latency statistics over a preallocated Float64Array of per-op latencies
// (milliseconds from performance.now()). Sorting a typed array is numeric and
// allocation-free; exact percentiles beat a histogram's bucketing here.

export interface LatencySummary {
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/** Nearest-rank percentile of an ascending array, p in (0, 1]. */
function rank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

/** Sorts `samples` in place and returns percentiles in microseconds. */
export function summarize(samples: Float64Array): LatencySummary {
  samples.sort();
  return {
    p50Us: rank(samples, 0.5) * 1000,
    p99Us: rank(samples, 0.99) * 1000,
    p999Us: rank(samples, 0.999) * 1000,
    maxUs: rank(samples, 1) * 1000,
  };
}
