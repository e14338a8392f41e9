// bench/latency.svg: one panel per LatencyChart group, each arm a line over p50 → p99.9 on a log
// latency axis. A pure function of the groups (no dependencies), so run.ts and the tests share it.
import type { LatencyChart } from './scenario.js'

export type ArmKind = 'raw' | 'hand' | 'sidecar' | 'weft'

// Okabe–Ito colours (readable by most colour-blind readers, dark enough on white); each kind also has
// its own marker, so the arms stay apart in grey print too.
const KIND: Record<ArmKind, { colour: string; marker: 'square' | 'triangle' | 'diamond' | 'circle'; dash: number; width: number }> = {
  raw: { colour: '#555555', marker: 'square', dash: 1, width: 2 },
  hand: { colour: '#D55E00', marker: 'triangle', dash: 0, width: 2 },
  sidecar: { colour: '#009E73', marker: 'diamond', dash: 0, width: 2 },
  weft: { colour: '#0072B2', marker: 'circle', dash: 0, width: 2.5 },
}
const DASHES = ['', '6 4', '2 3', '9 3 2 3']

/** The kind of an arm, from its label: sidecar first ("service mesh sidecar" is not Weft), then hand-written, then Weft. */
export function armKind(label: string): ArmKind {
  if (/sidecar|nginx|envoy/i.test(label)) return 'sidecar'
  if (/hand|cockatiel|prom-client|diy/i.test(label)) return 'hand'
  if (/weft|mesh/i.test(label)) return 'weft'
  return 'raw'
}

const PCTS = [
  { key: 'p50', label: 'p50' },
  { key: 'p90', label: 'p90' },
  { key: 'p99', label: 'p99' },
  { key: 'p999', label: 'p99.9' },
] as const

/** A value the log axis can place; JSON turns NaN into null, and 0 has no logarithm. */
function usable(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0
}

/** 1-2-5 ticks (decades only when the range spans more than 2.5 of them) from the last ≤ lo to the first ≥ hi. */
export function logTicks(lo: number, hi: number): number[] {
  if (!usable(lo) || !usable(hi)) return [1, 10, 100, 1000]
  if (hi < lo) [lo, hi] = [hi, lo]
  if (hi / lo < 1.5) [lo, hi] = [lo / 1.5, hi * 1.5] // at least three ticks for a flat group
  const mantissas = Math.log10(hi / lo) > 2.5 ? [1] : [1, 2, 5]
  const all: number[] = []
  for (let d = Math.floor(Math.log10(lo)) - 1; d <= Math.ceil(Math.log10(hi)); d++) {
    for (const m of mantissas) all.push(Number((m * 10 ** d).toPrecision(12)))
  }
  // The candidates start a decade below lo and end at or above hi, so both bounds exist.
  const first = all.filter((t) => t <= lo).length - 1
  const last = all.findIndex((t) => t >= hi)
  return all.slice(first, last + 1)
}

/** A latency in µs, three significant digits, in µs, ms or s. */
export function formatLatency(us: number): string {
  if (!usable(us)) return 'n/a'
  const r = Number(us.toPrecision(3))
  if (r < 1_000) return `${r} µs`
  if (r < 1_000_000) return `${Number((r / 1_000).toPrecision(3))} ms`
  return `${Number((r / 1_000_000).toPrecision(3))} s`
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
}

/** One decimal: small files, and a NaN would show up in the tests rather than as a silently broken path. */
const n = (x: number) => Math.round(x * 10) / 10

/** Plain text for the chart: scenarios write their arm names as markdown (`code`, **bold**) for RESULTS.md. */
function plain(s: string, max: number): string {
  const t = s.replace(/[`*]/g, '')
  return escapeXml(t.length <= max ? t : t.slice(0, max - 1) + '…')
}

function marker(kind: ArmKind, x: number, y: number, colour: string, hollow: boolean): string {
  const paint = `fill="${hollow ? '#ffffff' : colour}" stroke="${colour}" stroke-width="1.5"`
  switch (KIND[kind].marker) {
    case 'square':
      return `<rect x="${n(x - 3.5)}" y="${n(y - 3.5)}" width="7" height="7" ${paint}/>`
    case 'triangle':
      return `<path d="M${n(x)} ${n(y - 4.5)}L${n(x + 4.5)} ${n(y + 3.5)}L${n(x - 4.5)} ${n(y + 3.5)}Z" ${paint}/>`
    case 'diamond':
      return `<path d="M${n(x)} ${n(y - 5)}L${n(x + 5)} ${n(y)}L${n(x)} ${n(y + 5)}L${n(x - 5)} ${n(y)}Z" ${paint}/>`
    case 'circle':
      return `<circle cx="${n(x)}" cy="${n(y)}" r="4" ${paint}/>`
  }
}

// Layout, in SVG user units (px at 100 %).
const PANEL_W = 520
const PLOT = { left: 72, right: 24, top: 48, height: 220 }
const ROW_H = 20
const HEADER_H = 56

function panel(group: LatencyChart, x0: number, y0: number, height: number): string {
  const out: string[] = [`<g transform="translate(${x0} ${y0})">`]
  out.push(`<rect x="0.5" y="0.5" width="${PANEL_W - 1}" height="${height - 1}" rx="6" fill="#ffffff" stroke="#d0d7de"/>`)
  out.push(`<text x="${PANEL_W / 2}" y="28" text-anchor="middle" font-size="15" font-weight="600">${plain(group.title, 60)}</text>`)

  const series = group.series ?? []
  const values = series.flatMap((s) => PCTS.map((p) => s[p.key])).filter(usable)
  const ticks = values.length ? logTicks(Math.min(...values), Math.max(...values)) : logTicks(1, 1000)
  const lo = Math.log10(ticks[0]!)
  const hi = Math.log10(ticks[ticks.length - 1]!)
  const plotW = PANEL_W - PLOT.left - PLOT.right
  const bottom = PLOT.top + PLOT.height
  const yOf = (v: number) => bottom - ((Math.log10(v) - lo) / (hi - lo || 1)) * PLOT.height
  const xOf = (i: number) => PLOT.left + 24 + (i * (plotW - 48)) / (PCTS.length - 1)

  for (const t of ticks) {
    const y = n(yOf(t))
    out.push(
      `<g class="y-tick" data-value="${t}"><line x1="${PLOT.left}" x2="${PANEL_W - PLOT.right}" y1="${y}" y2="${y}" stroke="#e5e7eb"/>` +
        `<text x="${PLOT.left - 6}" y="${n(y + 4)}" text-anchor="end" font-size="12" fill="#57606a">${escapeXml(formatLatency(t))}</text></g>`,
    )
  }
  PCTS.forEach((p, i) => {
    const x = n(xOf(i))
    out.push(`<line x1="${x}" x2="${x}" y1="${PLOT.top}" y2="${bottom}" stroke="#f0f2f4"/>`)
    out.push(`<text x="${x}" y="${bottom + 18}" text-anchor="middle" font-size="12" fill="#57606a">${p.label}</text>`)
  })
  out.push(`<rect x="${PLOT.left}" y="${PLOT.top}" width="${plotW}" height="${PLOT.height}" fill="none" stroke="#8c959f"/>`)
  out.push(`<text x="${PLOT.left + plotW / 2}" y="${bottom + 38}" text-anchor="middle" font-size="12" fill="#24292f">percentile</text>`)
  const midY = PLOT.top + PLOT.height / 2
  out.push(`<text x="18" y="${midY}" text-anchor="middle" font-size="12" fill="#24292f" transform="rotate(-90 18 ${midY})">latency (log scale)</text>`)
  if (!values.length) out.push(`<text x="${PLOT.left + plotW / 2}" y="${midY}" text-anchor="middle" font-size="13" fill="#57606a">no data</text>`)

  const LEGEND_Y = bottom + 72
  if (series.length) out.push(`<text x="${PANEL_W - 16}" y="${LEGEND_Y - ROW_H}" text-anchor="end" font-size="11" fill="#57606a">p50 · p99</text>`)
  const seen: Partial<Record<ArmKind, number>> = {}
  series.forEach((s, row) => {
    const kind = armKind(s.label)
    const nth = (seen[kind] = (seen[kind] ?? -1) + 1) // a second arm of the same kind: another dash, hollow markers
    const { colour, width } = KIND[kind]
    const dash = DASHES[(KIND[kind].dash + nth) % DASHES.length]!
    const dashAttr = dash ? ` stroke-dasharray="${dash}"` : ''
    // A missing or zero percentile breaks the line rather than dropping to the axis; a lone point is just its marker.
    let d = ''
    let pen = false
    const marks: string[] = []
    PCTS.forEach((p, i) => {
      const v = s[p.key]
      if (!usable(v)) return void (pen = false)
      d += `${pen ? 'L' : 'M'}${n(xOf(i))} ${n(yOf(v))}`
      pen = true
      marks.push(marker(kind, xOf(i), yOf(v), colour, nth % 2 === 1))
    })
    out.push(`<g class="series" data-kind="${kind}"><title>${plain(s.label, 200)}</title>`)
    if (d.includes('L')) out.push(`<path d="${d}" fill="none" stroke="${colour}" stroke-width="${width}"${dashAttr} stroke-linejoin="round"/>`)
    out.push(...marks, '</g>')

    const ly = LEGEND_Y + row * ROW_H
    out.push(`<line x1="16" x2="44" y1="${ly - 4}" y2="${ly - 4}" stroke="${colour}" stroke-width="${width}"${dashAttr}/>`)
    out.push(marker(kind, 30, ly - 4, colour, nth % 2 === 1))
    const figures = `${formatLatency(s.p50)} · ${formatLatency(s.p99)}`
    // Character widths are guesses (the reader's font decides), so leave the label a generous margin before the figures.
    const room = PANEL_W - 16 - 52 - 16 - figures.length * 6.8
    out.push(`<text x="52" y="${ly}" font-size="12" fill="#24292f">${plain(s.label, Math.floor(room / 7))}</text>`)
    out.push(`<text x="${PANEL_W - 16}" y="${ly}" text-anchor="end" font-size="12" fill="#57606a">${escapeXml(figures)}</text>`)
  })
  out.push('</g>')
  return out.join('\n')
}

/** The whole chart as a standalone SVG document: panels two to a row, each with its own legend. */
export function latencyChartSvg(groups: LatencyChart[]): string {
  const cols = Math.min(Math.max(groups.length, 1), 2)
  const rows = Math.max(Math.ceil(groups.length / cols), 1)
  const legendRows = Math.max(1, ...groups.map((g) => g.series?.length ?? 0))
  const panelH = PLOT.top + PLOT.height + 68 + legendRows * ROW_H
  const gap = 16
  const width = cols * PANEL_W + (cols + 1) * gap
  const height = groups.length ? HEADER_H + rows * (panelH + gap) : HEADER_H + 80
  const title = 'Latency by percentile, lower is better'
  const body = groups.length
    ? groups.map((g, i) => panel(g, gap + (i % cols) * (PANEL_W + gap), HEADER_H + Math.floor(i / cols) * (panelH + gap), panelH))
    : [`<text x="${width / 2}" y="${HEADER_H + 40}" text-anchor="middle" font-size="14" fill="#57606a">No scenario reported latency percentiles in this run.</text>`]
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
      `font-family="-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, sans-serif" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="100%" height="100%" fill="#f6f8fa"/>`,
    `<text x="${gap}" y="26" font-size="17" font-weight="600" fill="#24292f">${escapeXml(title)}</text>`,
    `<text x="${gap}" y="44" font-size="12" fill="#57606a">Log latency scale; one line per arm, all from one bench run.</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n')
}
