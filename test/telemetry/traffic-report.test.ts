import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { DURATION_BUCKETS, MeshMetrics } from '../../src/telemetry/metrics.js'
import { ServerMetrics } from '../../src/telemetry/server-metrics.js'
import { TrafficReporter } from '../../src/telemetry/traffic-report.js'

function metrics() {
  const m = new MeshMetrics(new Registry(), 'checkout')
  return { m, reporter: new TrafficReporter(m) }
}

test('a report sums each peer\'s calls per latency bucket and counts 5xx, no response and non-OK gRPC as failures', () => {
  const { m, reporter } = metrics()
  assert.equal(reporter.take(), undefined, 'no traffic: nothing to report')
  const pay = m.forTarget('payments', 'default')
  pay.observe('GET', 200, '', 0.0004) // bucket 0 (≤ 0.5 ms)
  pay.observe('POST', 200, '', 0.003) // bucket 3 (≤ 5 ms)
  pay.observe('GET', 503, 'WEFT_ERR_CIRCUIT_OPEN', 0.0001)
  pay.observe('GET', 0, 'WEFT_ERR_CONNECT_FAILED', 0.002)
  pay.observe('GET', 404, '', 0.002) // a 4xx is the callee's answer, not a failure
  pay.observe('GET', 200, '', 30) // past the last bucket (10 s)
  new ServerMetrics(m).observe('GET', 500, '/users/:id', 'frontend', '', 0.02)
  m.forRpcTarget('ledger').observe('/weft.Ledger/Get', 0, '', 0.001)
  m.forRpcTarget('ledger').observe('/weft.Ledger/Get', 14, 'WEFT_ERR_UNAVAILABLE', 0.001)
  m.rpcServerFrom('payments').observe('/weft.Ledger/Get', 0, '', 0.001)

  const t = reporter.take()!
  assert.deepEqual(t.report.buckets, DURATION_BUCKETS)
  assert.ok(t.report.uptimeMs >= 0 && t.report.uptimeMs < 60_000)
  const edge = (dir: string, proto: string, peer: string) => t.report.edges.find((e) => e.dir === dir && e.proto === proto && e.peer === peer)
  const out = edge('out', 'http', 'payments')!
  assert.equal(out.counts.length, DURATION_BUCKETS.length + 1)
  assert.equal(out.counts.reduce((a, b) => a + b), 6)
  assert.equal(out.counts[0], 2) // 0.4 ms and 0.1 ms
  assert.equal(out.counts[3], 1)
  assert.equal(out.counts[2], 2) // 2 ms twice (≤ 2.5 ms)
  assert.equal(out.counts[DURATION_BUCKETS.length], 1, 'the 30 s call is past the last bucket')
  assert.equal(out.failures, 2, '503 and no response; not the 404')
  assert.deepEqual({ ...edge('in', 'http', 'frontend'), counts: undefined }, { dir: 'in', peer: 'frontend', proto: 'http', route: '/users/:id', counts: undefined, failures: 1 })
  assert.equal(edge('out', 'grpc', 'ledger')!.failures, 1)
  assert.equal(edge('in', 'grpc', 'payments')!.failures, 0)
  assert.equal(edge('in', 'grpc', 'payments')!.route, 'weft.Ledger/Get', 'served gRPC: the method is the route')
  assert.equal(edge('out', 'http', 'payments')!.route, undefined, 'calls: per peer only')
  assert.equal(t.report.edges.length, 4)
})

test('served traffic is one edge per (caller, route): two templates from one caller are two edges', () => {
  const { m, reporter } = metrics()
  const server = new ServerMetrics(m)
  server.observe('GET', 200, '/users/:id', 'frontend', '', 0.001)
  server.observe('GET', 200, '/users/:id', 'frontend', '', 0.001)
  server.observe('POST', 503, '/orders', 'frontend', '', 0.001)
  server.observe('POST', 200, '/orders', 'frontend', '', 0.001)
  const edges = reporter.take()!.report.edges.map((e) => [e.route, e.counts.reduce((a, b) => a + b), e.failures])
  assert.deepEqual(edges.sort(), [['/orders', 2, 1], ['/users/:id', 2, 0]])
})

test('only edges that changed since the daemon took a report are sent; an uncommitted report is sent again; a new stream resends all', () => {
  const { m, reporter } = metrics()
  const pay = m.forTarget('payments', 'default')
  const ledger = m.forTarget('ledger', 'default')
  pay.observe('GET', 200, '', 0.001)
  ledger.observe('GET', 200, '', 0.001)
  const first = reporter.take()!
  assert.equal(first.report.edges.length, 2)
  // The heartbeat did not get through (no commit): the next report has both again, totals grown.
  pay.observe('GET', 200, '', 0.001)
  const again = reporter.take()!
  assert.deepEqual(again.report.edges.map((e) => [e.peer, e.counts.reduce((a, b) => a + b)]), [['payments', 2], ['ledger', 1]])
  again.commit()
  assert.equal(reporter.take(), undefined, 'nothing changed since the daemon took it')
  ledger.observe('GET', 200, '', 0.001)
  const next = reporter.take()!
  assert.deepEqual(next.report.edges.map((e) => e.peer), ['ledger'])
  next.commit()
  reporter.resendAll()
  assert.deepEqual(reporter.take()!.report.edges.map((e) => e.peer).sort(), ['ledger', 'payments'])
})

test('reading the report does not register the rpc histograms of an HTTP-only mesh', async () => {
  const { m, reporter } = metrics()
  m.forTarget('payments', 'default').observe('GET', 200, '', 0.001)
  reporter.take()
  assert.doesNotMatch(await m.registry.metrics(), /rpc_client_duration_seconds/)
})
