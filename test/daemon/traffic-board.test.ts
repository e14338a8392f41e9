import assert from 'node:assert/strict'
import { test } from 'node:test'
import { TrafficBoard } from '../../src/daemon/traffic-board.js'
import { parseTraffic } from '../../src/daemon/traffic-parse.js'
import { DURATION_BUCKETS } from '../../src/telemetry/metrics.js'
import type { TrafficEdge, TrafficReport } from '../../src/telemetry/traffic-report.js'

const N = DURATION_BUCKETS.length + 1

/** Counts per bucket from { bucketIndex: calls }. */
function counts(at: Record<number, number>): number[] {
  const c = new Array<number>(N).fill(0)
  for (const [i, n] of Object.entries(at)) c[Number(i)] = n
  return c
}

function report(uptimeMs: number, edges: Partial<TrafficEdge>[]): TrafficReport {
  return { uptimeMs, buckets: [...DURATION_BUCKETS], edges: edges.map((e) => ({ dir: 'out', proto: 'http', peer: 'payments', counts: counts({}), failures: 0, ...e })) }
}

function clock(start = 1_000_000_000_000) {
  let t = start
  return { now: () => t, advance: (ms: number) => (t += ms) }
}

test('a young instance\'s first totals are new traffic; an old one\'s are a baseline, and only what follows counts', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(30_000)
  board.report({ id: 'checkout-1', service: 'checkout' }, report(2_000, [{ counts: counts({ 3: 10 }) }]))
  board.report({ id: 'checkout-2', service: 'checkout' }, report(7_200_000, [{ counts: counts({ 3: 5_000 }) }]))
  let v = board.top(30_000)
  assert.equal(v.edges.length, 1)
  assert.equal(v.edges[0]!.requests, 10, 'the two-hour-old instance\'s 5,000 calls are not in the window')
  assert.equal(v.edges[0]!.instances, 1)
  c.advance(3_000)
  board.report({ id: 'checkout-2', service: 'checkout' }, report(7_203_000, [{ counts: counts({ 3: 5_020 }), failures: 2 }]))
  v = board.top(30_000)
  assert.equal(v.edges[0]!.requests, 30)
  assert.equal(v.edges[0]!.instances, 2)
  assert.equal(v.instances, 2)
  assert.equal(v.edges[0]!.successRate, 28 / 30)
  assert.deepEqual([v.edges[0]!.from, v.edges[0]!.to, v.edges[0]!.proto, v.edges[0]!.namespace], ['checkout', 'payments', 'http', 'default'])
})

test('rates over the window covered, quantiles interpolated within a bucket, slower than the last bucket reported as the last bound', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(120_000) // the daemon has run longer than any window
  // 100 served calls: 50 in (1, 2.5] ms, 49 in (2.5, 5] ms, 1 past 10 s.
  board.report({ id: 'payments-1', service: 'payments', namespace: 'shop' }, report(1_000, [{ dir: 'in', peer: 'checkout', counts: counts({ 2: 50, 3: 49, [N - 1]: 1 }), failures: 1 }]))
  const v = board.top(20_000)
  assert.equal(v.windowMs, 20_000)
  assert.equal(v.coveredMs, 20_000)
  const s = v.services[0]!
  assert.deepEqual([s.service, s.namespace, s.proto, s.instances, s.requests], ['payments', 'shop', 'http', 1, 100])
  assert.equal(s.rps, 5, '100 calls in 20 s')
  assert.equal(s.successRate, 0.99)
  assert.equal(s.p50Ms, 2.5, 'the 50th call is the last of the (1, 2.5] ms bucket')
  assert.equal(s.p95Ms, 4.796, 'the 95th call: 45 of 49 into (2.5, 5] ms')
  assert.equal(s.p99Ms, 5)
  assert.equal(v.edges.length, 0, 'served traffic is not a caller edge')
  // One call past every bucket: the last bound, as Prometheus answers.
  board.report({ id: 'slow-1', service: 'slow' }, report(1_000, [{ dir: 'in', peer: 'unknown', counts: counts({ [N - 1]: 1 }) }]))
  assert.equal(board.top(30_000).services.find((x) => x.service === 'slow')!.p99Ms, DURATION_BUCKETS.at(-1)! * 1000)
})

test('served traffic per route: each route of each service on its own, summed over instances and callers; the service row is their sum', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(60_000)
  board.report({ id: 'p1', service: 'payments' }, report(1_000, [
    { dir: 'in', peer: 'checkout', route: '/charge', counts: counts({ 1: 30 }), failures: 3 },
    { dir: 'in', peer: 'reports', route: '/charge', counts: counts({ 1: 10 }) },
    { dir: 'in', peer: 'checkout', route: '/refunds/:id', counts: counts({ 4: 5 }) },
  ]))
  board.report({ id: 'p2', service: 'payments' }, report(1_000, [{ dir: 'in', peer: 'checkout', route: '/charge', counts: counts({ 1: 20 }), failures: 1 }]))
  board.report({ id: 'l1', service: 'ledger' }, report(1_000, [{ dir: 'in', proto: 'grpc', peer: 'payments', route: 'weft.Ledger/Post', counts: counts({ 0: 70 }) }]))
  const v = board.top(30_000)
  assert.deepEqual(v.services.map((x) => [x.service, x.requests, x.instances]), [['payments', 65, 2], ['ledger', 70, 1]].sort((a, b) => (b[1] as number) - (a[1] as number)))
  // Grouped by service in the services table's order (busiest first), then busiest route first.
  assert.deepEqual(v.routes.map((r) => [r.service, r.route, r.proto, r.requests, r.instances, r.successRate]), [
    ['ledger', 'weft.Ledger/Post', 'grpc', 70, 1, 1],
    ['payments', '/charge', 'http', 60, 2, 56 / 60],
    ['payments', '/refunds/:id', 'http', 5, 1, 1],
  ])
  // Later totals of one route count only their growth, per route.
  c.advance(3_000)
  board.report({ id: 'p1', service: 'payments' }, report(4_000, [{ dir: 'in', peer: 'checkout', route: '/refunds/:id', counts: counts({ 4: 8 }), failures: 1 }]))
  const refunds = board.top(30_000).routes.find((r) => r.route === '/refunds/:id')!
  assert.deepEqual([refunds.requests, refunds.successRate], [8, 7 / 8])
  assert.equal(board.top(30_000).services.find((x) => x.service === 'payments')!.requests, 68)
})

test('traffic leaves the window as time passes; a young daemon divides by the time it has run', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(4_000)
  board.report({ id: 'a', service: 'checkout' }, report(1_000, [{ counts: counts({ 1: 40 }) }]))
  let v = board.top(30_000)
  assert.equal(v.coveredMs, 4_000)
  assert.equal(v.edges[0]!.rps, 10)
  c.advance(10_000)
  board.report({ id: 'a', service: 'checkout' }, report(11_000, [{ counts: counts({ 1: 60 }) }]))
  assert.equal(board.top(30_000).edges[0]!.requests, 60)
  assert.equal(board.top(10_000).edges[0]!.requests, 20, 'the first 40 are older than 10 s')
  c.advance(70_000)
  v = board.top(60_000)
  assert.deepEqual([v.edges, v.services, v.instances], [[], [], 0])
})

test('a counter that went down (a restarted process reusing the id) counts its new totals; a known instance\'s new edge counts whole', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(60_000)
  board.report({ id: 'a', service: 'checkout' }, report(1_000, [{ counts: counts({ 1: 100 }) }]))
  board.report({ id: 'a', service: 'checkout' }, report(500, [{ counts: counts({ 1: 7 }) }]))
  assert.equal(board.top(30_000).edges[0]!.requests, 107)
  board.report({ id: 'a', service: 'checkout' }, report(2_000, [{ peer: 'ledger', proto: 'grpc', counts: counts({ 0: 3 }) }]))
  const ledger = board.top(30_000).edges.find((e) => e.to === 'ledger')!
  assert.deepEqual([ledger.proto, ledger.requests], ['grpc', 3])
})

test('one instance\'s edge keys are bounded: past 1,024 distinct peers or routes, new ones are not counted', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(60_000)
  for (let batch = 0; batch < 5; batch++) {
    board.report({ id: 'a', service: 'checkout' }, report(1_000, Array.from({ length: 256 }, (_, i) => ({ peer: `svc-${batch * 256 + i}`, counts: counts({ 1: 1 }) }))))
  }
  const v = board.top(30_000)
  assert.equal(v.edges.length, 1_024)
  assert.ok(!v.edges.some((e) => e.to === 'svc-1024'))
})

test('an instance with other bucket bounds is re-binned into the daemon\'s: each count to the first bucket that holds it', () => {
  const c = clock()
  const board = new TrafficBoard(c.now)
  c.advance(60_000)
  // Bounds 3 ms and 20 ms, then the overflow: into the daemon's 5 ms, 25 ms and overflow buckets.
  board.report({ id: 'a', service: 'checkout' }, { uptimeMs: 1_000, buckets: [0.003, 0.02], edges: [{ dir: 'out', proto: 'http', peer: 'payments', counts: [10, 0, 0], failures: 0 }] })
  const e = board.top(30_000).edges[0]!
  assert.equal(e.requests, 10)
  assert.equal(e.p99Ms, 4.975, 'within the daemon\'s (2.5, 5] ms bucket')
})

test('a heartbeat\'s traffic is refused with the field named: wrong shapes, counts, failures over calls, too many edges', () => {
  const good = report(1_000, [{ counts: counts({ 1: 2 }), failures: 1 }])
  assert.deepEqual(parseTraffic(JSON.parse(JSON.stringify(good))), good)
  const bad = (v: unknown, msg: RegExp) => assert.throws(() => parseTraffic(v), (err: Error & { status?: number }) => msg.test(err.message) && err.status === 400)
  bad([], /traffic must be an object/)
  bad({ ...good, extra: 1 }, /traffic: unknown field "extra"/)
  bad({ ...good, uptimeMs: -1 }, /traffic\.uptimeMs/)
  bad({ ...good, buckets: [0.1, 0.05] }, /traffic\.buckets\[1\]/)
  bad({ ...good, buckets: new Array(65).fill(0).map((_, i) => i + 1) }, /traffic\.buckets must list 1 to 64/)
  bad({ ...good, edges: [{ ...good.edges[0], dir: 'sideways' }] }, /traffic\.edges\[0\]\.dir/)
  bad({ ...good, edges: [{ ...good.edges[0], counts: [1, 2] }] }, /traffic\.edges\[0\]\.counts must list 18/)
  bad({ ...good, edges: [{ ...good.edges[0], counts: counts({ 4: -1 }) }] }, /traffic\.edges\[0\]\.counts\[4\] must be a non-negative integer/)
  bad({ ...good, edges: [{ ...good.edges[0], counts: counts({ 4: 1.5 }) }] }, /counts\[4\]/)
  bad({ ...good, edges: [{ ...good.edges[0], failures: 3 }] }, /traffic\.edges\[0\]\.failures \(3\) is more than the calls counted \(2\)/)
  bad({ ...good, edges: [{ ...good.edges[0], peer: 'a\u001b[2Jb' }] }, /traffic\.edges\[0\]\.peer/)
  bad({ ...good, edges: new Array(257).fill(good.edges[0]) }, /at most 256 edges/)
  bad({ ...good, edges: [{ ...good.edges[0], route: '/x' }] }, /traffic\.edges\[0\]\.route must be, on an "in" edge only/)
  bad({ ...good, edges: [{ ...good.edges[0], dir: 'in', route: 'x'.repeat(513) }] }, /traffic\.edges\[0\]\.route/)
  assert.equal(parseTraffic({ ...good, edges: [{ ...good.edges[0], dir: 'in', route: '/users/:id' }] }).edges[0]!.route, '/users/:id')
  // From a newer instance (fields collected, not refused): the field is named back.
  const ignored: string[] = []
  parseTraffic({ ...good, edges: [{ ...good.edges[0], bytes: 9 }] }, ignored)
  assert.deepEqual(ignored, ['traffic.edges[0].bytes'])
})
