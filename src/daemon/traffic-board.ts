// The fleet's traffic, from the instances' heartbeats (telemetry/traffic-report.ts), for `weft top`
// (GET /v1/top): per service, and per route of it, what its instances served; per caller → callee
// edge, what the callers saw (mesh-made failures included, which the callee never sees). Each instance reports
// totals since it started; the board keeps the last totals per instance and adds the difference to
// the current 5 s slot of each aggregate, so a query sums the slots its window covers, as
// Prometheus's rate() over counters does. Kept in memory only: a restarted daemon starts empty.
import { DURATION_BUCKETS } from '../telemetry/metrics.js'
import type { TrafficReport } from '../telemetry/traffic-report.js'

export const SLOT_MS = 5_000
/** Windows a query may ask for, ms. */
export const MIN_WINDOW_MS = 10_000
export const MAX_WINDOW_MS = 60_000
const SLOTS = MAX_WINDOW_MS / SLOT_MS + 1
/** An instance whose totals started this recently counts its first report as all new traffic. */
const FRESH_MS = 60_000
/** Instances not heard from for this long are forgotten (their next report is a new baseline). */
const FORGET_MS = 5 * 60_000
/** Edge keys (peer, route) remembered per instance at most; past it new ones are not counted. */
const MAX_INSTANCE_EDGES = 1_024
/** Aggregates at most (service routes, caller → callee edges); past it new ones are not counted. */
const MAX_AGGREGATES = 10_000

export interface TopStats {
  proto: 'http' | 'grpc'
  /** Instances that reported this traffic within the window. */
  instances: number
  requests: number
  rps: number
  /** Share of calls that did not fail (HTTP 5xx or no response, gRPC not OK), 0–1; null without calls. */
  successRate: number | null
  p50Ms: number | null
  p95Ms: number | null
  p99Ms: number | null
}

export interface TopService extends TopStats {
  namespace: string
  service: string
}

export interface TopRoute extends TopStats {
  namespace: string
  service: string
  /** HTTP: the route template the framework matched ("" when none); gRPC: `pkg.Service/Method`. */
  route: string
}

export interface TopEdge extends TopStats {
  namespace: string
  from: string
  to: string
}

export interface TopView {
  windowMs: number
  /** The time the figures cover: the window, or less since the daemon started. */
  coveredMs: number
  /** Instances that reported traffic within the window. */
  instances: number
  services: TopService[]
  /** What each service served per route (its instances' route templates, gRPC methods). */
  routes: TopRoute[]
  edges: TopEdge[]
}

interface Slot {
  epoch: number
  counts: Float64Array
  failures: number
}

interface Aggregate {
  namespace: string
  a: string
  b: string
  proto: 'http' | 'grpc'
  slots: Slot[]
  /** Instance id → the epoch it last added to this aggregate. */
  reporters: Map<string, number>
}

interface Window {
  counts: Float64Array
  failures: number
  reporters: Set<string>
}

interface Baseline {
  heardAt: number
  fresh: boolean
  edges: Map<string, { counts: number[]; failures: number }>
}

export interface ReportingInstance {
  id: string
  service: string
  namespace?: string
}

export class TrafficBoard {
  private readonly bounds = DURATION_BUCKETS
  private readonly instances = new Map<string, Baseline>()
  private readonly routes = new Map<string, Aggregate>()
  private readonly edges = new Map<string, Aggregate>()
  /** Instance bucket layouts → index of the board bucket each instance bucket adds to. */
  private readonly rebins = new Map<string, number[]>()
  private readonly started: number

  constructor(private readonly now: () => number = Date.now) {
    this.started = now()
  }

  report(inst: ReportingInstance, t: TrafficReport): void {
    const now = this.now()
    this.forgetOld(now)
    let base = this.instances.get(inst.id)
    const known = base !== undefined
    if (!base) this.instances.set(inst.id, (base = { heardAt: now, fresh: t.uptimeMs <= FRESH_MS, edges: new Map() }))
    base.heardAt = now
    const rebin = this.rebinFor(t.buckets)
    const epoch = Math.floor(now / SLOT_MS)
    const ns = inst.namespace || 'default'
    for (const e of t.edges) {
      const key = e.route === undefined ? `${e.dir} ${e.proto} ${e.peer}` : `${e.dir} ${e.proto} ${e.peer} ${e.route}`
      const prev = base.edges.get(key)
      // Per instance at most MAX_INSTANCE_EDGES keys over its life (a report holds 256 at most, but
      // one sending new peers or routes each time would otherwise grow its baseline without end).
      if (!prev && base.edges.size >= MAX_INSTANCE_EDGES) continue
      base.edges.set(key, { counts: e.counts, failures: e.failures })
      // The first totals of an instance that has run a while are a baseline, not new traffic. An
      // edge first seen from a known instance is new (an instance sends every edge again on a new
      // watch stream, so one it had before reaches a daemon with the instance's first report).
      if (!prev && !known && !base.fresh) continue
      // Served traffic is kept per route only (an edge without one under ""): a service's row is
      // the sum of its routes' in top(), not a second aggregate fed the same numbers.
      const agg = e.dir === 'in' ? this.aggregate(this.routes, ns, inst.service, e.route ?? '', e.proto) : this.aggregate(this.edges, ns, inst.service, e.peer, e.proto)
      if (!agg) continue
      const since = prev && !e.counts.some((c, i) => c < (prev.counts[i] ?? 0)) ? prev : undefined // a counter that went down: reset
      const slot = this.slotOf(agg, epoch)
      let added = 0
      for (let i = 0; i < e.counts.length; i++) {
        const d = e.counts[i]! - (since?.counts[i] ?? 0)
        if (d > 0) slot.counts[rebin[i]!]! += d
        added += d
      }
      slot.failures += since ? Math.max(0, e.failures - since.failures) : e.failures
      if (added > 0) agg.reporters.set(inst.id, epoch)
    }
  }

  /** GET /v1/top: the last `windowMs` (clamped to 10–60 s), busiest first. */
  top(windowMs: number): TopView {
    const now = this.now()
    const w = Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, windowMs))
    const covered = Math.max(1_000, Math.min(w, now - this.started))
    const epoch = Math.floor(now / SLOT_MS)
    // The current (partial) slot and enough whole ones before it to cover the window.
    const oldest = epoch - Math.ceil(w / SLOT_MS) + 1
    const reporting = new Set<string>()
    /** The aggregate's counts within the window, and who added to them. */
    const windowed = (agg: Aggregate, into: Window): void => {
      for (const slot of agg.slots) {
        if (!slot || slot.epoch < oldest) continue
        for (let i = 0; i < into.counts.length; i++) into.counts[i]! += slot.counts[i]!
        into.failures += slot.failures
      }
      for (const [id, at] of agg.reporters) if (at >= oldest) into.reporters.add(id)
    }
    const stats = (proto: 'http' | 'grpc', win: Window): TopStats | undefined => {
      const requests = win.counts.reduce((a, b) => a + b, 0)
      if (requests === 0) return undefined
      for (const id of win.reporters) reporting.add(id)
      return {
        proto,
        instances: win.reporters.size,
        requests,
        rps: Math.round((requests / (covered / 1000)) * 100) / 100,
        successRate: (requests - win.failures) / requests,
        p50Ms: this.quantileMs(win.counts, requests, 0.5),
        p95Ms: this.quantileMs(win.counts, requests, 0.95),
        p99Ms: this.quantileMs(win.counts, requests, 0.99),
      }
    }
    const fresh = (): Window => ({ counts: new Float64Array(this.bounds.length + 1), failures: 0, reporters: new Set() })
    // A service's row: its routes summed (instances: those that served any of them).
    const perService = new Map<string, { agg: Aggregate; win: Window }>()
    const routes: TopRoute[] = []
    for (const agg of this.routes.values()) {
      const key = `${agg.namespace}\u0000${agg.a}\u0000${agg.proto}`
      let svc = perService.get(key)
      if (!svc) perService.set(key, (svc = { agg, win: fresh() }))
      windowed(agg, svc.win)
      const win = fresh()
      windowed(agg, win)
      const st = stats(agg.proto, win)
      if (st) routes.push({ namespace: agg.namespace, service: agg.a, route: agg.b, ...st })
    }
    const services: TopService[] = []
    for (const { agg, win } of perService.values()) {
      const st = stats(agg.proto, win)
      if (st) services.push({ namespace: agg.namespace, service: agg.a, ...st })
    }
    const edges: TopEdge[] = []
    for (const agg of this.edges.values()) {
      const win = fresh()
      windowed(agg, win)
      const st = stats(agg.proto, win)
      if (st) edges.push({ namespace: agg.namespace, from: agg.a, to: agg.b, ...st })
    }
    const busiest = (x: TopStats, y: TopStats) => y.requests - x.requests
    // Routes: grouped by service, in the order of the services table, busiest route first.
    services.sort(busiest)
    const rank = new Map(services.map((x, i) => [`${x.namespace}/${x.service}/${x.proto}`, i]))
    const at = (r: TopRoute) => rank.get(`${r.namespace}/${r.service}/${r.proto}`) ?? 0
    return { windowMs: w, coveredMs: covered, instances: reporting.size, services, routes: routes.sort((x, y) => at(x) - at(y) || busiest(x, y)), edges: edges.sort(busiest) }
  }

  /** The latency at quantile `q`, linear within its bucket (as Prometheus's histogram_quantile). */
  private quantileMs(counts: Float64Array, total: number, q: number): number {
    const rank = q * total
    let below = 0
    for (let i = 0; i < counts.length; i++) {
      const c = counts[i]!
      if (below + c >= rank && c > 0) {
        // Past the last bound nothing is known but "slower": the last bound, as Prometheus answers.
        if (i === this.bounds.length) return this.bounds[i - 1]! * 1000
        const lo = i === 0 ? 0 : this.bounds[i - 1]!
        const hi = this.bounds[i]!
        return Math.round((lo + ((hi - lo) * (rank - below)) / c) * 1e6) / 1000
      }
      below += c
    }
    return this.bounds[this.bounds.length - 1]! * 1000
  }

  private aggregate(map: Map<string, Aggregate>, namespace: string, a: string, b: string, proto: 'http' | 'grpc'): Aggregate | undefined {
    const key = `${namespace}\u0000${a}\u0000${b}\u0000${proto}`
    let agg = map.get(key)
    if (!agg) {
      if (this.routes.size + this.edges.size >= MAX_AGGREGATES) return undefined
      map.set(key, (agg = { namespace, a, b, proto, slots: [], reporters: new Map() }))
    }
    return agg
  }

  private slotOf(agg: Aggregate, epoch: number): Slot {
    const i = epoch % SLOTS
    let s = agg.slots[i]
    if (!s) agg.slots[i] = s = { epoch, counts: new Float64Array(this.bounds.length + 1), failures: 0 }
    else if (s.epoch !== epoch) {
      s.epoch = epoch
      s.counts.fill(0)
      s.failures = 0
    }
    return s
  }

  /** For each of an instance's buckets (and its overflow), the first board bucket that holds it. */
  private rebinFor(buckets: readonly number[]): number[] {
    const key = buckets.join(',')
    let map = this.rebins.get(key)
    if (!map) {
      map = buckets.map((ub) => {
        const j = this.bounds.findIndex((b) => b >= ub)
        return j < 0 ? this.bounds.length : j
      })
      map.push(this.bounds.length)
      if (this.rebins.size < 64) this.rebins.set(key, map)
    }
    return map
  }

  private lastSweep = 0

  /** Forgets instances gone quiet and aggregates with nothing in the longest window; once a slot. */
  private forgetOld(now: number): void {
    if (now - this.lastSweep < SLOT_MS) return
    this.lastSweep = now
    for (const [id, b] of this.instances) if (now - b.heardAt > FORGET_MS) this.instances.delete(id)
    const oldest = Math.floor(now / SLOT_MS) - SLOTS
    for (const map of [this.routes, this.edges]) {
      for (const [key, agg] of map) {
        if (!agg.slots.some((s) => s && s.epoch > oldest)) map.delete(key)
        else for (const [id, at] of agg.reporters) if (at <= oldest) agg.reporters.delete(id)
      }
    }
  }
}
