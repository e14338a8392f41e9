// Reading a mesh's metrics back from its Prometheus text (mesh.metrics()): counter sums, and a
// duration histogram's count by status and its quantiles, estimated as histogram_quantile() does.

interface Sample {
  labels: string
  value: number
}

function* samples(text: string, name: string): Generator<Sample> {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== '{' && rest[0] !== ' ') continue
    const close = rest[0] === '{' ? rest.lastIndexOf('}') : -1
    const value = Number(rest.slice(close + 1).trim().split(' ')[0])
    if (Number.isFinite(value)) yield { labels: close < 0 ? '' : rest.slice(0, close + 1), value }
  }
}

function label(labels: string, name: string): string {
  return new RegExp(`[{,]${name}="((?:[^"\\\\]|\\\\.)*)"`).exec(labels)?.[1] ?? ''
}

/** Sums every sample of a counter. */
export function sumMetric(text: string, name: string): number {
  let total = 0
  for (const s of samples(text, name)) total += s.value
  return total
}

/** Sums a counter's samples grouped by the value of one label. */
export function metricByLabel(text: string, name: string, by: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of samples(text, name)) out.set(label(s.labels, by), (out.get(label(s.labels, by)) ?? 0) + s.value)
  return out
}

export interface HistogramView {
  count: number
  /** Observations by status_code label. */
  byStatus: Map<string, number>
  /** Observations by the values of some labels, joined with a space ("POST /checkout/:cart"). */
  by: (...labels: string[]) => Map<string, number>
  /** Quantile estimate in ms: linear within the bucket, like Prometheus' histogram_quantile(). */
  quantileMs: (q: number) => number
}

/** A duration histogram (seconds) summed over every label set. */
export function histogram(text: string, name: string): HistogramView {
  const counts = [...samples(text, `${name}_count`)]
  const buckets = new Map<number, number>()
  for (const s of samples(text, `${name}_bucket`)) {
    const le = label(s.labels, 'le')
    const bound = le === '+Inf' ? Infinity : Number(le)
    buckets.set(bound, (buckets.get(bound) ?? 0) + s.value)
  }
  const cumulative = [...buckets].sort((a, b) => a[0] - b[0])
  const by = (...names: string[]): Map<string, number> => {
    const out = new Map<string, number>()
    for (const s of counts) {
      const key = names.map((n) => label(s.labels, n)).join(' ')
      out.set(key, (out.get(key) ?? 0) + s.value)
    }
    return out
  }
  return {
    count: counts.reduce((n, s) => n + s.value, 0),
    byStatus: by('status_code'),
    by,
    quantileMs(q) {
      const total = cumulative.at(-1)?.[1] ?? 0
      if (total === 0) return 0
      const rank = q * total
      let lower = 0
      let below = 0
      for (const [bound, n] of cumulative) {
        if (n >= rank) {
          // Past the last finite bucket there is nothing to interpolate towards: report its bound.
          if (bound === Infinity) return lower * 1000
          return (lower + ((bound - lower) * (rank - below)) / Math.max(n - below, 1e-9)) * 1000
        }
        lower = bound
        below = n
      }
      return lower * 1000
    },
  }
}

/** Nearest-rank percentile of raw samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export function sorted(values: readonly number[]): number[] {
  return Array.from(Float64Array.from(values).sort())
}
