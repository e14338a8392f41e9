// The demo's output: the live progress line, mesh metrics read back from Prometheus text, and the summary table.
import type { Instance } from './servers.js'
import type { TrafficStats } from './traffic.js'

const int = (n: number): string => Math.round(n).toLocaleString('en-US')
const pct = (part: number, whole: number, digits = 1): string => `${whole === 0 ? '0' : ((part * 100) / whole).toFixed(digits)}%`

/** Sums every sample of a counter in Prometheus text (mesh.metrics()). */
export function sumMetric(text: string, name: string): number {
  let total = 0
  for (const s of samples(text, name)) total += s.value
  return total
}

/** Sums a counter's samples grouped by the value of one label. */
export function metricByLabel(text: string, name: string, label: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const s of samples(text, name)) {
    const m = new RegExp(`[{,]${label}="((?:[^"\\\\]|\\\\.)*)"`).exec(s.labels)
    const key = m?.[1] ?? ''
    out.set(key, (out.get(key) ?? 0) + s.value)
  }
  return out
}

function* samples(text: string, name: string): Generator<{ labels: string; value: number }> {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue
    const rest = line.slice(name.length)
    if (rest[0] !== '{' && rest[0] !== ' ') continue
    const close = rest[0] === '{' ? rest.lastIndexOf('}') : -1
    const value = Number(rest.slice(close + 1).trim().split(' ')[0])
    if (Number.isFinite(value)) yield { labels: close < 0 ? '' : rest.slice(0, close + 1), value }
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** Shares of final responses served by each version, from the per-instance counts. */
export function versionSplit(stats: TrafficStats, instances: readonly Instance[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const i of instances) out.set(i.version, (out.get(i.version) ?? 0) + (stats.servedBy.get(i.name) ?? 0))
  return out
}

/** One status line: rewritten in place on a TTY, one line per call otherwise; events print above it. */
export class Progress {
  private last = ''
  constructor(private readonly out: NodeJS.WriteStream = process.stdout, readonly tty = Boolean(process.stdout.isTTY)) {}

  update(line: string): void {
    // On a TTY the line must fit the terminal, or the next \r rewrites only its wrapped tail.
    this.last = this.tty && this.out.columns ? line.slice(0, this.out.columns - 1) : line
    if (this.tty) this.out.write(`\r\x1b[2K${this.last}`)
    else this.out.write(`${line}\n`)
  }

  /** A log line (an ejection, an open circuit) printed without breaking the progress line. */
  event(line: string): void {
    if (this.tty) this.out.write(`\r\x1b[2K${line}\n${this.last}`)
    else this.out.write(`${line}\n`)
  }

  done(): void {
    if (this.tty && this.last) this.out.write('\n')
    this.last = ''
  }
}

export interface Live {
  retries: number
  ejections: number
}

export function progressLine(stats: TrafficStats, instances: readonly Instance[], durationMs: number, live: Live): string {
  const elapsed = Math.min(stats.elapsedMs || performance.now() - stats.startedAt, durationMs)
  const width = 20
  const filled = Math.round((elapsed / durationMs) * width)
  const split = versionSplit(stats, instances)
  const served = [...split.values()].reduce((a, b) => a + b, 0)
  return [
    `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(elapsed / 1000).toFixed(1)}s`,
    `${int(stats.requests)} req (${int(stats.requests / Math.max(elapsed / 1000, 0.001))}/s)`,
    `ok ${pct(stats.ok, stats.requests, 2)}`,
    `v1 ${pct(split.get('v1') ?? 0, served)} / v2 ${pct(split.get('v2') ?? 0, served)}`,
    `retries ${int(live.retries)}`,
    `ejections ${int(live.ejections)}`,
  ].join('  ')
}

export interface Summary {
  stats: TrafficStats
  instances: readonly Instance[]
  concurrency: number
  canary: { v1: number; v2: number }
  /** Prometheus text from mesh.metrics() at the end of the run. */
  metrics: string
}

export function summaryTable({ stats, instances, concurrency, canary, metrics }: Summary): string {
  const sorted = Float64Array.from(stats.latencies).sort()
  const lat = Array.from(sorted)
  const retries = sumMetric(metrics, 'weft_retries_total')
  const retryReasons = metricByLabel(metrics, 'weft_retries_total', 'reason')
  const ejections = metricByLabel(metrics, 'weft_endpoint_ejections_total', 'endpoint')
  const ejectionTotal = [...ejections.values()].reduce((a, b) => a + b, 0)
  const budgetExhausted = sumMetric(metrics, 'weft_retry_budget_exhausted_total')
  const split = versionSplit(stats, instances)
  const served = [...split.values()].reduce((a, b) => a + b, 0)
  const secs = stats.elapsedMs / 1000
  const nameOf = new Map(instances.map((i) => [i.address, i.name]))

  const rows: [string, string][] = [
    ['requests', `${int(stats.requests)}  (${int(stats.requests / Math.max(secs, 0.001))}/s over ${secs.toFixed(1)}s, ${concurrency} in flight; GET ${int(stats.gets)} / POST ${int(stats.posts)})`],
    ['success', `${pct(stats.ok, stats.requests, 2)}  (${int(stats.ok)} ok, ${int(stats.failed)} failed)`],
    ['latency p50', `${percentile(lat, 50).toFixed(2)} ms`],
    ['latency p99', `${percentile(lat, 99).toFixed(2)} ms`],
    ['retries', `${int(retries)}${retryReasons.size ? `  (${[...retryReasons].map(([r, n]) => `${r}: ${int(n)}`).join(', ')})` : ''}${budgetExhausted ? `; ${int(budgetExhausted)} refused by the budget` : ''}`],
    ['ejections', `${int(ejectionTotal)}${ejections.size ? `  (${[...ejections].map(([a, n]) => `${nameOf.get(a) ?? a} ×${int(n)}`).join(', ')})` : ''}`],
    ['split v1 / v2', `${pct(split.get('v1') ?? 0, served)} / ${pct(split.get('v2') ?? 0, served)}  (route weights ${canary.v1} / ${canary.v2})`],
  ]
  const failures = [...stats.byStatus].filter(([s]) => s < 200 || s >= 300).map(([s, n]) => `${s === 0 ? 'error' : s}: ${int(n)}`)
  if (failures.length) rows.push(['failed calls', `${failures.join(', ')}${stats.errors.size ? `  (${[...stats.errors].map(([c, n]) => `${c} ×${int(n)}`).join(', ')})` : ''}`])

  const w = Math.max(...rows.map(([k]) => k.length))
  const lines = ['', 'summary', `  ${'-'.repeat(w)}  ${'-'.repeat(40)}`]
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(w)}  ${v}`)

  const head = ['instance', 'version', 'zone', 'address', 'answered', '503s sent', 'final responses']
  const table = instances.map((i) => [i.name, i.version, i.zone, i.address, int(i.served), int(i.failed), `${int(stats.servedBy.get(i.name) ?? 0)} (${pct(stats.servedBy.get(i.name) ?? 0, served)})`])
  const widths = head.map((h, c) => Math.max(h.length, ...table.map((r) => r[c]!.length)))
  const fmt = (r: string[]): string => '  ' + r.map((cell, c) => (c >= 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')
  lines.push('', 'per instance', fmt(head), fmt(widths.map((n) => '-'.repeat(n))), ...table.map(fmt))

  const sent503 = instances.reduce((n, i) => n + i.failed, 0)
  const seen503 = stats.byStatus.get(503) ?? 0
  lines.push('', `upstream 503s absorbed by retries: ${int(Math.max(0, sent503 - seen503))} of ${int(sent503)} (the application saw ${int(seen503)})`)
  return lines.join('\n')
}
