// Durations: "250ms", "2s", "1m", "1h", "1m30s", or a number of milliseconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y

/** Parses a duration to milliseconds; returns undefined when the text is not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.length === 0) return undefined
  let total = 0
  PART.lastIndex = 0
  while (PART.lastIndex < value.length) {
    const at = PART.lastIndex
    const m = PART.exec(value)
    if (!m || m.index !== at) return undefined
    total += Number(m[1]) * UNIT_MS[m[2]!]!
  }
  return total
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`
  return `${ms}ms`
}
