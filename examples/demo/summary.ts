// The summary printed at the end: checkout's inbound figures, its calls to payments, payments' gRPC
// calls to the ledger, then the payments instances with the share each answered before, during and
// after the busy window.
import { status as grpcStatus } from '@grpc/grpc-js'
import type { OutboundStats } from './checkout.js'
import type { Instance } from './fleet.js'
import { int, ms, pct, sum } from './format.js'
import { BUSY, PHASES, type Phase } from './instances.js'
import type { LedgerInstance } from './ledger.js'
import { histogram, metricByLabel, percentile, sorted, sumMetric } from './metrics.js'
import { versionSplit } from './progress.js'
import type { ClientStats } from './traffic.js'

export interface Canary {
  atSeconds: number
  /** checkout's final responses by instance when the canary version went live on it. */
  servedBefore: ReadonlyMap<string, number>
  version?: number
  liveAfterMs?: number
}

export interface Summary {
  client: ClientStats
  outbound: OutboundStats
  instances: readonly Instance[]
  concurrency: number
  deadlineMs: number
  canary: { v1: number; v2: number }
  /** When the canary route was applied, and checkout's counts at the moment it went live. */
  canaryRun: Canary
  /** When the busy phase ran, in seconds since the start of the traffic. */
  busyWindow: [number, number]
  /** checkout's Prometheus text (mesh.metrics()) at the end of the run. */
  metrics: string
  ledgers: readonly LedgerInstance[]
  /** The ledger mesh's Prometheus text at the end of the run. */
  ledgerMetrics: string
}

function section(title: string, rows: [string, string][]): string[] {
  const w = Math.max(...rows.map(([k]) => k.length))
  return ['', title, ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)]
}

const statuses = (byStatus: ReadonlyMap<string | number, number>): string =>
  [...byStatus].filter(([s]) => !String(s).startsWith('2')).map(([s, n]) => `${String(s) === '0' ? 'error' : s}: ${int(n)}`).join(', ')

export function summaryTable(s: Summary): string {
  const { client, outbound: out, instances, metrics } = s
  const secs = client.elapsedMs / 1000
  const server = histogram(metrics, 'http_server_request_duration_seconds')
  const serverOk = sum([...server.byStatus].filter(([c]) => c.startsWith('2')).map(([, n]) => n))
  const routes = [...server.by('method', 'http_route').keys()].join(', ')
  const clientLat = sorted(client.latencies)
  const inbound = section('checkout  (Express 5 + app.use(weft(mesh)); inbound: http_server_request_duration_seconds)', [
    ['requests', `${int(server.count)}  (${int(server.count / Math.max(secs, 0.001))}/s over ${secs.toFixed(1)}s; route ${routes || '-'}; from a plain HTTP client, ${s.concurrency} in flight)`],
    ['success', `${pct(serverOk, server.count, 2)}  (${int(serverOk)} 2xx${statuses(server.byStatus) ? `; ${statuses(server.byStatus)}` : ''})`],
    ['latency p50', `≈ ${ms(server.quantileMs(0.5))}  (histogram estimate; the client, sharing checkout's process, measured ${ms(percentile(clientLat, 50))})`],
    ['latency p99', `≈ ${ms(server.quantileMs(0.99))}  (the client measured ${ms(percentile(clientLat, 99))})`],
  ])

  const calls = histogram(metrics, 'http_client_request_duration_seconds')
  const callsOk = sum([...calls.byStatus].filter(([c]) => c.startsWith('2')).map(([, n]) => n))
  const handlerLat = sorted(out.latencies)
  const retryReasons = metricByLabel(metrics, 'weft_retries_total', 'reason')
  const budgetExhausted = sumMetric(metrics, 'weft_retry_budget_exhausted_total')
  const nameOf = new Map(instances.map((i) => [i.address, i.name]))
  const ejections = metricByLabel(metrics, 'weft_endpoint_ejections_total', 'endpoint')
  const before = versionSplit(s.canaryRun.servedBefore, instances)
  const total = versionSplit(out.servedBy, instances)
  const after = new Map([...total].map(([v, n]) => [v, n - (before.get(v) ?? 0)]))
  const servedBefore = sum(before.values())
  const servedAfter = sum(after.values())
  const canaryLive = s.canaryRun.liveAfterMs !== undefined
  const callers = [...out.callers].map(([c, n]) => `"${c}"${out.callers.size > 1 ? ` ×${int(n)}` : ''}`).join(', ')
  const left = sorted(out.deadlineLeft)
  const outbound = section('checkout → payments  (mesh.fetch in the handler; outbound: http_client_request_duration_seconds, weft counters)', [
    ['requests', `${int(calls.count)}  (retries are inside a call, not extra calls)`],
    ['success', `${pct(callsOk, calls.count, 2)}  (${int(callsOk)} 2xx${statuses(calls.byStatus) ? `; ${statuses(calls.byStatus)}` : ''}${out.errors.size ? `; ${[...out.errors].map(([c, n]) => `${c} ×${int(n)}`).join(', ')}` : ''})`],
    ['latency p50', `≈ ${ms(calls.quantileMs(0.5))}  (histogram estimate; the handler measured ${ms(percentile(handlerLat, 50))})`],
    ['latency p99', `≈ ${ms(calls.quantileMs(0.99))}  (the handler measured ${ms(percentile(handlerLat, 99))})`],
    ['retries', `${int(sumMetric(metrics, 'weft_retries_total'))}${retryReasons.size ? `  (${[...retryReasons].map(([r, n]) => `${r}: ${int(n)}`).join(', ')})` : ''}${budgetExhausted ? `; ${int(budgetExhausted)} refused by the budget` : ''}`],
    ['ejections', `${int(sum(ejections.values()))}${ejections.size ? `  (${[...ejections].map(([a, n]) => `${nameOf.get(a) ?? a} ×${int(n)}`).join(', ')})` : ''}`],
    ['split v1 / v2', canaryLive
      ? `${pct(before.get('v1') ?? 0, servedBefore)} / ${pct(before.get('v2') ?? 0, servedBefore)} before the canary (route: all to v1), ${pct(after.get('v1') ?? 0, servedAfter)} / ${pct(after.get('v2') ?? 0, servedAfter)} after it (weights ${s.canary.v1} / ${s.canary.v2}, applied through the daemon at ${s.canaryRun.atSeconds.toFixed(1)}s, live on checkout ${s.canaryRun.liveAfterMs!.toFixed(0)} ms later)`
      : `${pct(total.get('v1') ?? 0, servedAfter)} / ${pct(total.get('v2') ?? 0, servedAfter)}  (route: all to v1; the run ended before the canary went live)`],
    ['context', `payments saw checkout's trace id on ${pct(out.traceJoined, out.ok)} of charges, weft-caller ${callers || '-'}, deadline left p50 ${int(percentile(left, 50))} ms of the client's ${int(s.deadlineMs)}`],
  ])

  return [...inbound, ...outbound, ...ledgerHop(s), ...instanceTable(s)].join('\n')
}

/** Non-OK gRPC statuses by name ("UNAVAILABLE: 3"). */
const grpcStatuses = (byCode: ReadonlyMap<string, number>): string =>
  [...byCode].filter(([c]) => c !== '0').map(([c, n]) => `${grpcStatus[Number(c)] ?? c}: ${int(n)}`).join(', ')

/** payments → ledger: the payments processes' client view (their metrics lines), then the ledger's own. */
function ledgerHop({ instances, ledgers, ledgerMetrics, outbound: out, deadlineMs }: Summary): string[] {
  const paymentsText = instances.map((i) => i.ledgerMetrics).join('\n')
  const calls = histogram(paymentsText, 'rpc_client_duration_seconds')
  const byCode = calls.by('rpc_grpc_status_code')
  const callsOk = byCode.get('0') ?? 0
  const served = histogram(ledgerMetrics, 'rpc_server_duration_seconds')
  const retryReasons = metricByLabel(paymentsText, 'weft_retries_total', 'reason')
  const budgetExhausted = sumMetric(paymentsText, 'weft_retry_budget_exhausted_total')
  const nameOf = new Map(ledgers.map((l) => [l.address, l.name]))
  const ejections = metricByLabel(paymentsText, 'weft_endpoint_ejections_total', 'endpoint')
  const attempts = sum(ledgers.map((l) => l.calls))
  const callers = new Map<string, number>()
  for (const l of ledgers) for (const [c, n] of l.callers) callers.set(c, (callers.get(c) ?? 0) + n)
  const callerList = [...callers].map(([c, n]) => `"${c}"${callers.size > 1 ? ` ×${int(n)}` : ''}`).join(', ')
  const left = sorted(ledgers.flatMap((l) => l.deadlineLeft))
  const lines = section(`payments → ledger  (gRPC, mesh.grpc.client in the /charge handler; client: rpc_client_duration_seconds + weft counters of the ${instances.length} payments meshes; server: rpc_server_duration_seconds)`, [
    ['calls', `${int(calls.count)}  (Ledger.Post; the ledger's servers saw ${int(served.count)}: retries included)`],
    ['success', `${pct(callsOk, calls.count, 2)}  (${int(callsOk)} OK${grpcStatuses(byCode) ? `; ${grpcStatuses(byCode)}` : ''}; the servers answered ${pct(served.by('rpc_grpc_status_code').get('0') ?? 0, served.count, 2)} OK${grpcStatuses(served.by('rpc_grpc_status_code')) ? `, ${grpcStatuses(served.by('rpc_grpc_status_code'))}` : ''})`],
    ['latency p50', `≈ ${ms(calls.quantileMs(0.5))}  (histogram estimates, payments' side, retries included; the ledger's servers ≈ ${ms(served.quantileMs(0.5))})`],
    ['latency p99', `≈ ${ms(calls.quantileMs(0.99))}  (the ledger's servers ≈ ${ms(served.quantileMs(0.99))})`],
    ['retries', `${int(sumMetric(paymentsText, 'weft_retries_total'))}${retryReasons.size ? `  (${[...retryReasons].map(([r, n]) => `${r}: ${int(n)}`).join(', ')})` : ''}${budgetExhausted ? `; ${int(budgetExhausted)} refused by the budget` : ''}`],
    ['ejections', `${int(sum(ejections.values()))}${ejections.size ? `  (${[...ejections].map(([a, n]) => `${nameOf.get(a) ?? a} ×${int(n)}`).join(', ')})` : ''}`],
    ['split', `${ledgers.map((l) => `${l.name} ${pct(l.calls, attempts)}`).join(' / ')}  (posts each instance's handler got, retries included: ${ledgers.map((l) => `${int(l.calls)}${l.unavailable ? `, ${int(l.unavailable)} answered UNAVAILABLE` : ''}`).join(' / ')})`],
    ['context', `the ledger saw checkout's trace id on ${pct(out.ledgerTraceJoined, out.ok)} of charges, weft-caller ${callerList || '-'}, deadline left p50 ${int(percentile(left, 50))} ms of the client's ${int(deadlineMs)}`],
  ])
  const sentUnavailable = sum(ledgers.map((l) => l.unavailable))
  const seenUnavailable = byCode.get(String(grpcStatus.UNAVAILABLE)) ?? 0
  lines.push(`ledger UNAVAILABLEs absorbed by retries: ${int(Math.max(0, sentUnavailable - seenUnavailable))} of ${int(sentUnavailable)} (payments' calls ended UNAVAILABLE ${int(seenUnavailable)} times)`)
  return lines
}

function instanceTable({ instances, busyWindow, outbound }: Summary): string[] {
  const answered = (i: Instance, p?: Phase): number => (p === undefined ? sum(i.phases.map((c) => c.answered)) : i.phases[p]?.answered ?? 0)
  const total = (p?: Phase): number => sum(instances.map((i) => answered(i, p)))
  const busy = instances.find((i) => i.cpuBusy)
  const window = `${busyWindow[0].toFixed(1)}–${busyWindow[1].toFixed(1)}s`
  const head = ['instance', 'version', 'zone', 'pid', 'answered', '503s sent', 'share', `${PHASES[0]}`, `busy ${window}`, PHASES[2], 'weft-load while busy']
  const rows = instances.map((i) => {
    const b = i.phases[1]
    return [
      `${i.name}${i.cpuBusy ? ' (busy)' : ''}`, i.version, i.zone, String(i.pid),
      i.phases.length ? int(answered(i)) : '?', i.phases.length ? int(sum(i.phases.map((c) => c.failed))) : '?',
      pct(answered(i), total()), pct(answered(i, 0), total(0)), pct(answered(i, 1), total(1)), pct(answered(i, 2), total(2)),
      b && b.answered > 0 ? (b.loadSum / b.answered).toFixed(2) : '-',
    ]
  })
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)))
  const fmt = (r: string[]): string => '  ' + r.map((cell, c) => (c >= 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ')
  const lines = ['', 'payments instances  (Fastify 5 + weftPlugin, each its own process and mesh; share = requests answered, retries included)', fmt(head), fmt(widths.map((n) => '-'.repeat(n))), ...rows.map(fmt)]
  if (busy) {
    const v1 = instances.filter((i) => i.version === busy.version)
    const shareOfVersion = (p: Phase): string => pct(answered(busy, p), sum(v1.map((i) => answered(i, p))))
    lines.push('', `${busy.name} busy-looped ${BUSY.blockMs} ms of every ${BUSY.everyMs} ms from ${window}: it answered ${shareOfVersion(1)} of ${busy.version}'s requests then (${shareOfVersion(0)} before, ${shareOfVersion(2)} after;`,
      `  retries of ${busy.version} 503s included: a retry goes to another instance, here the busy one)`)
  }
  const sent503 = sum(instances.map((i) => sum(i.phases.map((c) => c.failed))))
  const seen503 = outbound.byStatus.get(503) ?? 0
  lines.push(`upstream 503s absorbed by retries: ${int(Math.max(0, sent503 - seen503))} of ${int(sent503)} (checkout's handler saw ${int(seen503)})`)
  return lines
}
