// `weft top`: the fleet's live traffic, from the instances' heartbeats (GET /v1/top): per service
// (with --routes, per route too), what its instances served (RPS, success rate, p50/p95/p99); per
// caller → callee edge, what the
// callers saw, mesh-made failures included (an open circuit, a deadline), which the callee never
// sees. Like `linkerd viz stat` and `linkerd viz edges`, without a Prometheus. On a terminal it
// redraws every --interval until Ctrl-C; piped, or with --once, it prints once.
import { CONNECTION_FLAGS, OUTPUT_FLAG, outputFormat, parseArgs, UsageError } from './args.js'
import { withClient } from './client.js'
import { render, serviceName, table } from './table.js'
import { parseDuration } from '../util/duration.js'
import { printable } from '../util/printable.js'
import type { TopStats, TopView } from '../daemon/traffic-board.js'

export async function top(argv: readonly string[]): Promise<number> {
  const args = parseArgs('top', argv, { ...CONNECTION_FLAGS, ...OUTPUT_FLAG, window: { kind: 'string', short: 'w' }, interval: { kind: 'string' }, once: { kind: 'boolean' }, routes: { kind: 'boolean', short: 'r' } })
  if (args.positional.length > 0) throw new UsageError(`weft top: unexpected argument ${args.positional[0]}`)
  const format = outputFormat('top', args)
  const windowMs = parseDuration(args.strings.window ?? '30s')
  if (windowMs === undefined || windowMs < 10_000 || windowMs > 60_000 || windowMs % 1000 !== 0) throw new UsageError(`weft top: --window must be 10s to 60s in whole seconds (got "${args.strings.window}")`)
  const intervalMs = parseDuration(args.strings.interval ?? '2s')
  if (intervalMs === undefined || intervalMs < 500) throw new UsageError(`weft top: --interval must be a duration of at least 500ms (got "${args.strings.interval}")`)
  const live = !args.booleans.once && format === 'table' && process.stdout.isTTY === true
  const withRoutes = args.booleans.routes === true
  return withClient(args, async (client) => {
    const fetchView = () => client.call<TopView>('GET', `/v1/top?window=${windowMs / 1000}`)
    if (!live) {
      const view = await fetchView()
      process.stdout.write(render(format, view, () => topTable(view, withRoutes)))
      return 0
    }
    let stop = false
    const onSignal = () => (stop = true)
    process.once('SIGINT', onSignal)
    try {
      while (!stop) {
        const view = await fetchView()
        // Home, clear: redraw in place.
        process.stdout.write(`\u001b[H\u001b[2J${new Date().toISOString()}  (every ${intervalMs / 1000}s, Ctrl-C to stop)\n${topTable(view, withRoutes)}`)
        await new Promise((r) => setTimeout(r, intervalMs))
      }
    } finally {
      process.removeListener('SIGINT', onSignal)
    }
    return 0
  })
}

function pct(s: TopStats): string {
  return s.successRate === null ? '-' : `${(Math.floor(s.successRate * 10_000) / 100).toFixed(2)}%`
}

function ms(v: number | null): string {
  if (v === null) return '-'
  return v < 10 ? `${v.toFixed(2)}ms` : v < 1000 ? `${v.toFixed(1)}ms` : `${(v / 1000).toFixed(2)}s`
}

function stats(s: TopStats): string[] {
  return [s.proto, s.rps.toFixed(1), pct(s), ms(s.p50Ms), ms(s.p95Ms), ms(s.p99Ms)]
}

function named(service: string, namespace: string): string {
  return printable(serviceName(service, namespace))
}

/** The tables `weft top` prints: served per service (and per route with `routes`), then calls. */
export function topTable(v: TopView, routes = false): string {
  const covered = v.coveredMs < v.windowMs ? ` (${Math.round(v.coveredMs / 1000)}s of it since the daemon started)` : ''
  let out = `last ${v.windowMs / 1000}s${covered}, ${v.instances} instance${v.instances === 1 ? '' : 's'} reporting\n`
  if (v.services.length === 0 && v.edges.length === 0) return out + 'no traffic reported (instances report with each heartbeat; older instances do not report)\n'
  out += '\nserved (as the services\' instances saw it):\n'
  out += v.services.length === 0 ? 'none\n' : table(['SERVICE', 'INSTANCES', 'PROTO', 'RPS', 'SUCCESS', 'P50', 'P95', 'P99'], v.services.map((s) => [named(s.service, s.namespace), String(s.instances), ...stats(s)]))
  if (routes) {
    out += '\nserved per route (HTTP: the route template the app matched, - for none; gRPC: the method):\n'
    out += v.routes.length === 0 ? 'none\n' : table(['SERVICE', 'ROUTE', 'INSTANCES', 'PROTO', 'RPS', 'SUCCESS', 'P50', 'P95', 'P99'], v.routes.map((r) => [named(r.service, r.namespace), r.route === '' ? '-' : printable(r.route), String(r.instances), ...stats(r)]))
  }
  out += '\ncalls (as the callers saw them, mesh failures included):\n'
  out += v.edges.length === 0 ? 'none\n' : table(['FROM', 'TO', 'INSTANCES', 'PROTO', 'RPS', 'SUCCESS', 'P50', 'P95', 'P99'], v.edges.map((e) => [named(e.from, e.namespace), printable(e.to), String(e.instances), ...stats(e)]))
  return out
}
