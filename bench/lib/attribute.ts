// Where a process's event loop went, from a V8 CPU profile: each sample is charged to the innermost
// frame that belongs to a package or to Weft (Node internals and V8 builtins are charged to the code
// that called them), and Weft's frames to the source file they were bundled from (tsup keeps a
// `// src/<file>.ts` line before each file's code in dist/). Shares are of the profile's wall time,
// so they read as event-loop utilisation.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { CpuProfile, ProfileNode } from './profile.js'

type Frame = ProfileNode['callFrame']

/** What L8 counts as metrics and policy work, and the rest. */
export type Share = 'telemetry' | 'policy' | 'weft-other' | 'not-weft' | 'gc' | 'idle'

/**
 * Weft's source files by concern. Telemetry: metrics and trace context (src/telemetry, prom-client,
 * the OpenTelemetry API). Policy: deciding what happens to a request — route matching (the
 * compiled snapshot's tables), authorization, identity checks, retries and their budget, breaker,
 * limits, fault injection, timeouts. The rest of Weft (the layer plumbing, the HTTP glue, balancing,
 * the inbound core) is "weft-other".
 */
function weftShare(src: string): Share {
  if (src.startsWith('src/telemetry/')) return 'telemetry'
  if (/^src\/(authz|routing|resilience|identity)\//.test(src) || src === 'src/compile.ts') return 'policy'
  return 'weft-other'
}

const bundleMarks = new Map<string, { line: number; src: string }[]>()

/** The src/ file a line of a dist/ bundle came from. */
function srcOf(url: string, line: number): string {
  let marks = bundleMarks.get(url)
  if (!marks) {
    marks = []
    const lines = readFileSync(fileURLToPath(url), 'utf8').split('\n')
    for (let i = 0; i < lines.length; i++) {
      const m = /^\/\/ (src\/\S+\.ts)$/.exec(lines[i]!)
      if (m) marks.push({ line: i, src: m[1]! })
    }
    bundleMarks.set(url, marks)
  }
  let found = 'src/?'
  for (const m of marks) {
    if (m.line > line) break
    found = m.src
  }
  return found
}

const SRC = new URL('../../src/', import.meta.url).href
const DIST = new URL('../../dist/', import.meta.url).href

function shareOf(f: Frame): Share | undefined {
  const { url } = f
  if (url === '' || url.startsWith('node:')) return undefined
  if (url.startsWith(DIST)) return weftShare(srcOf(url, f.lineNumber))
  if (url.startsWith(SRC)) return weftShare(`src/${url.slice(SRC.length)}`)
  if (/node_modules\/(prom-client|tdigest|bintrees|@opentelemetry)\//.test(url)) return 'telemetry'
  if (url.includes('node_modules/cockatiel/')) return 'policy'
  return 'not-weft'
}

export interface Attribution {
  wallMs: number
  /** Fraction of the wall time, by share. */
  shares: Record<Share, number>
  /** Top Weft source files by share of wall time (telemetry and policy first). */
  files: [string, number][]
}

export function attribute(file: string): Attribution {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const wallUs = p.endTime - p.startTime
  const shares: Record<Share, number> = { telemetry: 0, policy: 0, 'weft-other': 0, 'not-weft': 0, gc: 0, idle: 0 }
  const files = new Map<string, number>()
  const memo = new Map<number, { share: Share; src?: string }>()
  const classify = (id: number): { share: Share; src?: string } => {
    const known = memo.get(id)
    if (known) return known
    const leaf = byId.get(id)!.callFrame.functionName
    let out: { share: Share; src?: string } = { share: 'not-weft' }
    if (leaf === '(idle)') out = { share: 'idle' }
    else if (leaf === '(garbage collector)') out = { share: 'gc' }
    else {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const f = byId.get(cur)!.callFrame
        const s = shareOf(f)
        if (s === undefined) continue
        out = { share: s, src: f.url.startsWith(DIST) ? srcOf(f.url, f.lineNumber) : f.url.startsWith(SRC) ? `src/${f.url.slice(SRC.length)}` : undefined }
        break
      }
    }
    memo.set(id, out)
    return out
  }
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i + 1] ?? 0
    const c = classify(p.samples[i]!)
    shares[c.share] += us
    if (c.src) files.set(c.src, (files.get(c.src) ?? 0) + us)
  }
  for (const k of Object.keys(shares) as Share[]) shares[k] /= wallUs
  return { wallMs: wallUs / 1000, shares, files: [...files].map(([f, us]): [string, number] => [f, us / wallUs]).sort((a, b) => b[1] - a[1]) }
}
