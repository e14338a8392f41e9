// Server-side RED metrics: http_server_request_duration_seconds per (method, status, route
// template, source, error code). The source comes from a request header, so it is bounded here:
// anything that is not a DNS-style name is "unknown", and past 64 distinct sources "_other".
import { DNS_NAME } from '../config/names.js'
import type { HistogramChild } from './fast-histogram.js'
import { KNOWN_METHODS, type MeshMetrics } from './metrics.js'

const MAX_SOURCES = 64
const MAX_CHILDREN = 2048

export class ServerMetrics {
  private readonly children = new Map<string, HistogramChild>()
  private readonly sources = new Set<string>()

  constructor(private readonly m: MeshMetrics) {}

  /** The source_service label value for a caller name taken from a header. */
  sourceLabel(caller: string | undefined): string {
    if (caller === undefined || caller === '') return 'unknown'
    if (this.sources.has(caller)) return caller
    if (!DNS_NAME.test(caller)) return 'unknown'
    if (this.sources.size >= MAX_SOURCES) return '_other'
    this.sources.add(caller)
    return caller
  }

  // The last label set: consecutive requests mostly repeat it (see TargetMetrics.observe).
  private last: { method: string; status: number; route: string; source: string; code: string; child: HistogramChild } | undefined

  observe(method: string, status: number, route: string, source: string, errorCode: string, seconds: number): void {
    const l = this.last
    if (l !== undefined && l.status === status && l.route === route && l.method === method && l.source === source && l.code === errorCode) {
      l.child.observe(seconds)
      return
    }
    const key = `${method} ${status} ${route} ${source} ${errorCode}`
    let child = this.children.get(key)
    if (!child) {
      if (this.children.size >= MAX_CHILDREN) this.children.clear()
      child = this.m.serverDuration.labels({
        method: KNOWN_METHODS.has(method) ? method : '_OTHER',
        status_code: String(status),
        http_route: route,
        source_service: source,
        destination_service: this.m.source,
        error_code: errorCode,
      })
      this.children.set(key, child)
    }
    this.last = { method, status, route, source, code: errorCode, child }
    child.observe(seconds)
  }
}
