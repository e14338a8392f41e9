// Compares two V8 .cpuprofiles (baseline arm vs Weft arm): self time per request by category, Weft file and function.
import { readFileSync } from 'node:fs'
import { fmt, table } from './scenario.js'

export interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
/** A V8 CPU profile as the inspector's Profiler.stop returns it. */
export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface ProfiledRun {
  label: string
  file: string
  requests: number
}

const SRC = new URL('../../src/', import.meta.url).href
const DIST = new URL('../../dist/', import.meta.url).href
const WEFT = 'Weft (src/, dist/)'

function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle'
  if (fn === '(garbage collector)') return 'GC'
  if (fn === '(program)') return 'V8/native (program)'
  if (url.startsWith(SRC) || url.startsWith(DIST)) return WEFT
  if (url.includes('node_modules/undici/')) return 'undici'
  if (url.startsWith('wasm://')) return 'undici (llhttp wasm)'
  if (/node_modules\/(prom-client|tdigest|bintrees)\//.test(url)) return 'prom-client'
  if (url.includes('node_modules/@opentelemetry/')) return '@opentelemetry/api'
  if (url.includes('node_modules/cockatiel/')) return 'cockatiel'
  if (url.includes('/bench/')) return 'bench harness'
  if (url.startsWith('node:') || url === '') return 'Node internals / builtins (socket writes, microtasks, …)'
  return 'other'
}

const short = (url: string) => url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/')

interface Loaded {
  /** µs of self time per request, by key. */
  cats: Map<string, number>
  files: Map<string, number>
  fns: Map<string, { perReq: number; cat: string }>
  busyPerReq: number
  wallMs: number
}

function load(run: ProfiledRun): Loaded {
  const p = JSON.parse(readFileSync(run.file, 'utf8')) as CpuProfile
  const byId = new Map(p.nodes.map((n) => [n.id, n.callFrame]))
  const n = Math.max(1, run.requests)
  const out: Loaded = { cats: new Map(), files: new Map(), fns: new Map(), busyPerReq: 0, wallMs: (p.endTime - p.startTime) / 1000 }
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v)
  for (let i = 0; i < p.samples.length; i++) {
    const { functionName, url } = byId.get(p.samples[i]!)!
    const us = (p.timeDeltas[i + 1] ?? 0) / n
    const cat = category(url, functionName)
    add(out.cats, cat, us)
    if (cat === 'idle') continue
    out.busyPerReq += us
    if (cat === WEFT) add(out.files, short(url), us)
    // Line numbers of tsx-compiled files do not match the source, so Weft functions are keyed by file only.
    const key = `\`${functionName || '(anonymous)'}\` ${short(url)}`
    const f = out.fns.get(key) ?? { perReq: 0, cat }
    f.perReq += us
    out.fns.set(key, f)
  }
  return out
}

/** tsx compiles with esbuild's keepNames: each closure created per request also pays an Object.defineProperty. */
function keepNamesNote(w: Loaded): string[] {
  const cost = [...w.fns].filter(([k]) => k.startsWith('`__name`') || k.startsWith('`set name`')).reduce((n, [, f]) => n + f.perReq, 0)
  if (cost < 0.05) return []
  return [``, `\`__name\` and \`set name\` (${us(cost)} per request together) come from tsx, which compiles src/ with esbuild's keepNames: every function ` +
    `created per request is renamed with Object.defineProperty. The tsup build in dist/ has no such calls; the closures themselves remain.`]
}

const us = (v: number | undefined) => `${(v ?? 0).toFixed(2)} µs`
const delta = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(2)} µs`

/** Markdown: main-thread self time per request, baseline vs Weft, and where the difference sits. */
export function compareProfiles(base: ProfiledRun, weft: ProfiledRun, topN = 15): string {
  const b = load(base)
  const w = load(weft)
  const cats = [...new Set([...b.cats.keys(), ...w.cats.keys()])].filter((c) => c !== 'idle')
  cats.sort((x, y) => (w.cats.get(y) ?? 0) - (b.cats.get(y) ?? 0) - ((w.cats.get(x) ?? 0) - (b.cats.get(x) ?? 0)))
  const fnDelta = [...new Set([...b.fns.keys(), ...w.fns.keys()])].map((k) => ({
    k,
    cat: (w.fns.get(k) ?? b.fns.get(k))!.cat,
    b: b.fns.get(k)?.perReq ?? 0,
    w: w.fns.get(k)?.perReq ?? 0,
  }))
  fnDelta.sort((x, y) => y.w - y.b - (x.w - x.b))
  const weftFns = fnDelta.filter((f) => f.cat === WEFT).sort((x, y) => y.w - x.w)
  return [
    `Main-thread CPU per request (non-idle samples ÷ requests): ${base.label} **${us(b.busyPerReq)}**, ${weft.label} **${us(w.busyPerReq)}** ` +
      `(${delta(w.busyPerReq - b.busyPerReq)}); ${fmt.int(base.requests)} and ${fmt.int(weft.requests)} requests in ${fmt.int(b.wallMs)} and ${fmt.int(w.wallMs)} ms profiles.`,
    ``,
    `Self time per request by category, largest increase first:`,
    ``,
    table(['category', base.label, weft.label, 'difference'], cats.map((c) => [c, us(b.cats.get(c)), us(w.cats.get(c)), delta((w.cats.get(c) ?? 0) - (b.cats.get(c) ?? 0))])),
    ``,
    `Functions whose self time per request grew most (all code):`,
    ``,
    table(['function', 'category', base.label, weft.label, 'difference'], fnDelta.slice(0, topN).map((f) => [f.k, f.cat, us(f.b), us(f.w), delta(f.w - f.b)])),
    ``,
    `Weft's own code, self time per request by file:`,
    ``,
    table(['file', weft.label], [...w.files].sort((x, y) => y[1] - x[1]).slice(0, 12).map(([f, v]) => [f, us(v)])),
    ``,
    `Top Weft functions by self time per request:`,
    ``,
    table(['function', weft.label], weftFns.slice(0, topN).map((f) => [f.k, us(f.w)])),
    ...keepNamesNote(w),
  ].join('\n')
}
