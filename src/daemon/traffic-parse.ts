// The `traffic` of a heartbeat (telemetry/traffic-report.ts), checked field by field: an instance's
// numbers go into fleet-wide sums that `weft top` shows, so a broken or hostile report is refused
// with the field named, and it can hold no more than a bounded amount of memory.
import { MAX_TRAFFIC_EDGES, type TrafficEdge, type TrafficReport } from '../telemetry/traffic-report.js'
import { badRequest } from './http-error.js'
import { onlyFields } from './fields.js'

const MAX_BUCKETS = 64
const MAX_PEER = 253
const MAX_ROUTE = 512

type Obj = Record<string, unknown>

function object(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(`${field} must be an object`)
  return v as Obj
}

function count(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw badRequest(`${field} must be a non-negative integer (got ${JSON.stringify(v)?.slice(0, 40)})`)
  return v
}

function parseEdge(v: unknown, field: string, buckets: number, ignored?: string[]): TrafficEdge {
  const e = object(v, field)
  onlyFields(e, ['dir', 'peer', 'proto', 'route', 'counts', 'failures'], field, ignored)
  if (e.dir !== 'in' && e.dir !== 'out') throw badRequest(`${field}.dir must be "in" or "out"`)
  if (e.proto !== 'http' && e.proto !== 'grpc') throw badRequest(`${field}.proto must be "http" or "grpc"`)
  if (typeof e.peer !== 'string' || e.peer.length > MAX_PEER || /[\u0000-\u001f\u007f]/.test(e.peer)) {
    throw badRequest(`${field}.peer must be a service name of at most ${MAX_PEER} characters, no control characters ("" for callers outside the mesh)`)
  }
  if (e.route !== undefined && (e.dir !== 'in' || typeof e.route !== 'string' || e.route.length > MAX_ROUTE || /[\u0000-\u001f\u007f]/.test(e.route))) {
    throw badRequest(`${field}.route must be, on an "in" edge only, a route template of at most ${MAX_ROUTE} characters, no control characters`)
  }
  if (!Array.isArray(e.counts) || e.counts.length !== buckets + 1) throw badRequest(`${field}.counts must list ${buckets + 1} counts (one per bucket, then one past the last)`)
  let total = 0
  const counts = e.counts.map((c, i) => (total += count(c, `${field}.counts[${i}]`), c as number))
  const failures = count(e.failures, `${field}.failures`)
  if (failures > total) throw badRequest(`${field}.failures (${failures}) is more than the calls counted (${total})`)
  return { dir: e.dir, peer: e.peer, proto: e.proto, ...(e.route !== undefined ? { route: e.route as string } : {}), counts, failures }
}

/** Checks a heartbeat's `traffic`; `ignored` collects a newer instance's fields instead of refusing them. */
export function parseTraffic(v: unknown, ignored?: string[]): TrafficReport {
  const t = object(v, 'traffic')
  onlyFields(t, ['uptimeMs', 'buckets', 'edges'], 'traffic', ignored)
  if (typeof t.uptimeMs !== 'number' || !Number.isFinite(t.uptimeMs) || t.uptimeMs < 0) throw badRequest('traffic.uptimeMs must be a non-negative number of milliseconds')
  const b = t.buckets
  if (!Array.isArray(b) || b.length === 0 || b.length > MAX_BUCKETS) throw badRequest(`traffic.buckets must list 1 to ${MAX_BUCKETS} bucket bounds (seconds)`)
  for (const [i, x] of b.entries()) {
    if (typeof x !== 'number' || !Number.isFinite(x) || x <= 0 || (i > 0 && x <= (b[i - 1] as number))) {
      throw badRequest(`traffic.buckets[${i}] must be a positive number of seconds, greater than the one before`)
    }
  }
  if (!Array.isArray(t.edges) || t.edges.length > MAX_TRAFFIC_EDGES) throw badRequest(`traffic.edges must be a list of at most ${MAX_TRAFFIC_EDGES} edges`)
  const edges = t.edges.map((e, i) => parseEdge(e, `traffic.edges[${i}]`, b.length, ignored))
  return { uptimeMs: t.uptimeMs, buckets: b as number[], edges }
}
