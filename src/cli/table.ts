// Aligned plain-text tables (kubectl style: upper-case headers, columns two spaces apart, the last
// column unpadded) and the -o table|json|yaml switch the listing commands share.
import { stringify } from 'yaml'

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))))
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i]! - width(c)))).join('  ').trimEnd()
  return [line(header), ...rows.map(line)].join('\n') + '\n'
}

/** Display width: code points, so "—" or "≥" count as one column. */
function width(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}

/** `data` as JSON or YAML, else the command's table (or `empty` when there are no rows). */
export function render(format: 'table' | 'json' | 'yaml', data: unknown, asTable: () => string): string {
  if (format === 'json') return JSON.stringify(data, null, 2) + '\n'
  if (format === 'yaml') return stringify(data)
  return asTable()
}

/** A service as the tables name it: "payments", or "payments.team-a" outside the default namespace. */
export function serviceName(service: string, namespace: string | undefined): string {
  return namespace && namespace !== 'default' ? `${service}.${namespace}` : service
}

/** "version=v2,zone=a" (sorted), or "-" for none. */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const keys = Object.keys(labels ?? {}).sort()
  return keys.length === 0 ? '-' : keys.map((k) => `${k}=${labels![k]}`).join(',')
}

/** "4s ago", "3m ago", "2h ago" from an ISO time or epoch milliseconds; "-" when unknown. */
export function ago(at: string | number | undefined, now = Date.now()): string {
  if (at === undefined || at === null) return '-'
  const t = typeof at === 'number' ? at : Date.parse(at)
  if (!Number.isFinite(t)) return String(at)
  const s = Math.max(0, Math.round((now - t) / 1000))
  if (s < 120) return `${s}s ago`
  if (s < 7200) return `${Math.round(s / 60)}m ago`
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`
  return `${Math.round(s / 86_400)}d ago`
}
