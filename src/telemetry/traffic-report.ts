// What an instance tells its daemon about its traffic, with each heartbeat, so `weft top` can show
// the fleet's request rate, success rate and latency per service and per caller → callee edge
// without a Prometheus (as `linkerd viz stat` does with one). Read off the RED histograms the
// request path already fills; nothing is added to the request path. Totals are cumulative since
// the mesh started (as Prometheus counters are): a heartbeat that does not get through loses
// nothing, the next one carries the sum. Only edges that changed since the daemon last took a
// report are sent.
import type { HistogramChild } from './fast-histogram.js'
import type { MeshMetrics } from './metrics.js'

/** One direction of traffic with one peer, over one protocol, since the mesh started. */
export interface TrafficEdge {
  /** out: calls this instance made; in: calls it served. */
  dir: 'in' | 'out'
  /** out: the destination service; in: the caller's service (server-metrics.ts: "unknown" for a caller that did not say, "_other" past 64 callers). */
  peer: string
  proto: 'http' | 'grpc'
  /**
   * in: the route served — HTTP the framework's route template (`/users/:id`; "" when the app gave
   * none), gRPC `pkg.Service/Method`; each route is an edge of its own. out: absent.
   */
  route?: string
  /** Calls per latency bucket (the report's `buckets`, then one past the last: slower). */
  counts: number[]
  /** Calls that failed: HTTP 5xx or no response; gRPC any status but OK. */
  failures: number
}

export interface TrafficReport {
  /** How long the totals have been counting, ms (the daemon takes a young instance's first report as all new). */
  uptimeMs: number
  /** Upper bounds of the latency buckets, seconds, ascending. */
  buckets: number[]
  edges: TrafficEdge[]
}

/** Edges per report at most (the daemon refuses more); the rest go with the next heartbeat. */
export const MAX_TRAFFIC_EDGES = 256

interface EdgeSum {
  edge: TrafficEdge
  total: number
}

export class TrafficReporter {
  private readonly started = performance.now()
  /** Per edge key, the total the daemon last took. */
  private readonly taken = new Map<string, number>()

  private resend = false

  constructor(private readonly m: MeshMetrics) {}

  /** A new watch stream, maybe to another daemon: the next report carries every edge. */
  resendAll(): void {
    this.resend = true
  }

  /**
   * The edges that changed since the daemon last took a report, or undefined when none did.
   * `commit` is called once the heartbeat carrying it got through.
   */
  take(): { report: TrafficReport; commit(): void } | undefined {
    if (this.resend) {
      this.resend = false
      this.taken.clear()
    }
    const sums = new Map<string, EdgeSum>()
    const bounds = this.m.clientDuration.bounds
    const add = (dir: 'in' | 'out', proto: 'http' | 'grpc', peer: string, failed: boolean, child: HistogramChild, route?: string): void => {
      if (child.count === 0) return
      const key = route === undefined ? `${dir} ${proto} ${peer}` : `${dir} ${proto} ${peer} ${route}`
      let s = sums.get(key)
      if (!s) {
        const edge: TrafficEdge = { dir, peer, proto, counts: new Array<number>(bounds.length + 1).fill(0), failures: 0 }
        if (route !== undefined) edge.route = route
        sums.set(key, (s = { edge, total: 0 }))
      }
      let inBuckets = 0
      for (let i = 0; i < child.counts.length; i++) {
        s.edge.counts[i]! += child.counts[i]!
        inBuckets += child.counts[i]!
      }
      s.edge.counts[bounds.length]! += child.count - inBuckets
      s.total += child.count
      if (failed) s.edge.failures += child.count
    }
    const httpFailed = (l: Readonly<Record<string, string>>) => l.status_code === '0' || Number(l.status_code) >= 500
    this.m.clientDuration.each((c) => add('out', 'http', c.labels.destination_service ?? '', httpFailed(c.labels), c))
    this.m.serverDuration.each((c) => add('in', 'http', c.labels.source_service ?? '', httpFailed(c.labels), c, c.labels.http_route ?? ''))
    const rpc = this.m.rpcIfUsed
    if (rpc) {
      rpc.client.each((c) => add('out', 'grpc', c.labels.destination_service ?? '', c.labels.rpc_grpc_status_code !== '0', c))
      rpc.server.each((c) => add('in', 'grpc', c.labels.source_service ?? '', c.labels.rpc_grpc_status_code !== '0', c, `${c.labels.rpc_service ?? ''}/${c.labels.rpc_method ?? ''}`))
    }
    const changed: [string, EdgeSum][] = []
    for (const [key, s] of sums) {
      if (this.taken.get(key) !== s.total) changed.push([key, s])
      if (changed.length === MAX_TRAFFIC_EDGES) break
    }
    if (changed.length === 0) return undefined
    return {
      report: { uptimeMs: Math.round(performance.now() - this.started), buckets: [...bounds], edges: changed.map(([, s]) => s.edge) },
      commit: () => {
        for (const [key, s] of changed) this.taken.set(key, s.total)
      },
    }
  }
}
