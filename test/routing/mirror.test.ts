// Route rule `mirror` (traffic shadowing): copies go to the mirror service fire and forget, with
// real node:http servers for the primary and the mirror on loopback.
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import type { Mesh } from '../../src/index.js'
import { loadValue } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { metricValue, quietMesh, route, service } from '../helpers/mesh.js'
import { ok, startUpstream, status, type Upstream } from '../helpers/upstream.js'

/** Waits (bounded) until `cond` holds: mirrored copies arrive after the caller's answer. */
async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

let primary: Upstream, audit: Upstream, tiny: Upstream, v1: Upstream, v2: Upstream
let mesh: Mesh

before(async () => {
  primary = await startUpstream('primary')
  audit = await startUpstream('audit')
  tiny = await startUpstream('tiny')
  v1 = await startUpstream('v1')
  v2 = await startUpstream('v2', status(500))
  mesh = await quietMesh([
    service('payments', { endpoints: [{ address: primary.address }] }),
    service('audit', { endpoints: [{ address: audit.address }] }),
    service('tiny', { endpoints: [{ address: tiny.address }], concurrencyLimit: 2 }),
    service('orders', {
      endpoints: [{ address: v1.address, labels: { version: 'v1' } }, { address: v2.address, labels: { version: 'v2' } }],
      circuitBreaker: { consecutiveFailures: 3 },
    }),
    route('payments', {
      service: 'payments',
      rules: [
        { name: 'aborted', matches: [{ path: { prefix: '/aborted' } }], fault: { abort: { percent: 100, httpStatus: 503 } }, mirror: { service: 'audit' } },
        { name: 'half', matches: [{ path: { prefix: '/half' } }], mirror: { service: 'audit', percent: 50 } },
        { name: 'none', matches: [{ path: { prefix: '/none' } }], mirror: { service: 'audit', percent: 0 } },
        { name: 'limited', matches: [{ path: { prefix: '/limited' } }], mirror: { service: 'tiny' } },
        { name: 'all', mirror: { service: 'audit' } },
      ],
    }),
    route('orders', {
      service: 'orders',
      rules: [{ name: 'to-v1', backends: [{ subset: { version: 'v1' } }], mirror: { subset: { version: 'v2' } } }],
    }),
  ])
})
after(async () => {
  await mesh.close()
  for (const u of [primary, audit, tiny, v1, v2]) await u.close()
})

const reset = (...ups: Upstream[]) => {
  for (const u of ups) {
    u.hits = 0
    u.seen.length = 0
  }
}

test('every call of a mirrored rule sends a copy: same method, path and body, Host "<service>-shadow", same trace; the caller gets the primary\'s answer', async () => {
  reset(primary, audit)
  const before = metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'all', result: 'sent', destination_service: 'audit' })
  for (let i = 0; i < 5; i++) {
    const res = await mesh.request('http://payments/charge?n=1', { method: 'POST', body: `order ${i}`, headers: { 'content-type': 'text/plain' } })
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'ok from primary')
  }
  await until(() => audit.hits === 5, 'five copies at the mirror')
  assert.equal(primary.hits, 5)
  for (let i = 0; i < 5; i++) {
    const copy = audit.seen[i]!
    const orig = primary.seen[i]!
    assert.equal(copy.method, 'POST')
    assert.equal(copy.url, '/charge?n=1')
    assert.equal(copy.headers.host, 'audit-shadow')
    assert.equal(copy.headers['content-type'], 'text/plain')
    assert.equal(copy.headers['weft-caller'], 'checkout')
    assert.ok(audit.seen.some((s) => s.body === orig.body), `a copy of "${orig.body}"`)
    // One trace: the copy has the call's trace id and a span id of its own.
    const [, origTrace, origSpan] = String(orig.headers.traceparent).split('-')
    const sameTrace = audit.seen.find((s) => String(s.headers.traceparent).split('-')[1] === origTrace)
    assert.ok(sameTrace, 'a copy in the call\'s trace')
    assert.notEqual(String(sameTrace.headers.traceparent).split('-')[2], origSpan)
  }
  let text = await mesh.metrics()
  assert.equal(metricValue(text, 'weft_mirror_requests_total', { route: 'all', result: 'sent', destination_service: 'audit' }) - before, 5)
  // The copies' answers are measured as the mirror service's, under the rule's ".mirror" route.
  const mirrored = () => metricValue(text, 'http_client_request_duration_seconds_count', { route: 'all.mirror', destination_service: 'audit' })
  for (let i = 0; i < 100 && mirrored() < 5; i++) {
    await new Promise((r) => setTimeout(r, 20))
    text = await mesh.metrics()
  }
  assert.equal(mirrored(), 5)
})

test('the copy\'s failure or silence never reaches the caller; copies past the mirror service\'s concurrencyLimit are skipped, not queued', async () => {
  reset(primary, audit, tiny)
  const held: (() => void)[] = []
  tiny.behaviour = (_req, res) => void held.push(() => res.end('late'))
  try {
    const skipped0 = metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'limited', result: 'skipped_limit' })
    // tiny's concurrencyLimit is 2: two copies hang there, the third call's copy is skipped.
    for (let i = 0; i < 3; i++) {
      const res = await mesh.request('http://payments/limited')
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'ok from primary')
    }
    await until(() => held.length === 2, 'two copies held at the mirror')
    assert.equal(primary.hits, 3)
    assert.equal(metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'limited', result: 'skipped_limit' }) - skipped0, 1)
  } finally {
    tiny.behaviour = ok('tiny')
    for (const release of held) release()
  }
  // A mirror answering 500 changes nothing for the caller either.
  audit.behaviour = status(500)
  try {
    for (let i = 0; i < 3; i++) {
      const res = await mesh.request('http://payments/charge')
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'ok from primary')
    }
    await until(() => audit.hits === 3, 'the copies at the failing mirror')
  } finally {
    audit.behaviour = ok('audit')
  }
})

test('failing copies to a subset of the same service do not open its circuit breaker for the real calls', async () => {
  reset(v1, v2)
  // v2 answers every copy 500, a little later than v1 answers the real calls: so the ten failures
  // come after the last success, ten in a row, past the breaker's 3 consecutive failures.
  let answered = 0
  v2.behaviour = (_req, res) => void setTimeout(() => {
    res.statusCode = 500
    res.end('no')
    answered++
  }, 100)
  try {
    for (let i = 0; i < 10; i++) {
      const res = await mesh.request('http://orders/list')
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'ok from v1')
    }
    await until(() => answered === 10, 'ten failed copies at v2')
    const copies = () => mesh.metrics().then((t) => metricValue(t, 'http_client_request_duration_seconds_count', { route: 'to-v1.mirror', status_code: '500' }))
    for (let i = 0; i < 100 && (await copies()) < 10; i++) await new Promise((r) => setTimeout(r, 20))
    assert.equal(await copies(), 10)
    const res = await mesh.request('http://orders/list')
    assert.equal(res.statusCode, 200)
    await res.body.dump()
    assert.equal(v1.hits, 11)
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'orders' }), 0)
  } finally {
    v2.behaviour = status(500)
  }
})

test('percent: 0 sends no copy, 50 about half (binomial bounds over 400 calls)', async () => {
  reset(audit)
  for (let i = 0; i < 20; i++) await (await mesh.request('http://payments/none')).body.dump()
  const sentHalf0 = metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'half', result: 'sent' })
  for (let batch = 0; batch < 8; batch++) {
    await Promise.all(Array.from({ length: 50 }, async () => (await mesh.request('http://payments/half')).body.dump()))
  }
  const sent = metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'half', result: 'sent' }) - sentHalf0
  // 400 draws at p = 0.5: mean 200, sd 10; ±5 sd.
  assert.ok(sent >= 150 && sent <= 250, `sent ${sent}`)
  await until(() => audit.hits === sent, 'the copies of /half')
  assert.equal(audit.seen.filter((s) => s.url === '/none').length, 0)
  assert.equal(metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'none' }), 0)
})

test('a streamed request body is not mirrored (counted skipped_body); the primary still gets it whole', async () => {
  reset(primary, audit)
  const skipped0 = metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'all', result: 'skipped_body' })
  const res = await mesh.request('http://payments/upload', { method: 'PUT', body: Readable.from([Buffer.from('part one, '), Buffer.from('part two')]) })
  assert.equal(res.statusCode, 200)
  await res.body.dump()
  assert.equal(primary.seen[0]!.body, 'part one, part two')
  assert.equal(metricValue(await mesh.metrics(), 'weft_mirror_requests_total', { route: 'all', result: 'skipped_body' }) - skipped0, 1)
  // A call after it is mirrored again (and is the only copy the mirror saw).
  await (await mesh.request('http://payments/after')).body.dump()
  await until(() => audit.hits === 1, 'the next call\'s copy')
  assert.equal(audit.seen[0]!.url, '/after')
})

test('a call a fault aborts sends no copy (the request never left, as in Envoy)', async () => {
  reset(primary, audit)
  for (let i = 0; i < 5; i++) {
    const res = await mesh.request('http://payments/aborted')
    assert.equal(res.statusCode, 503)
    await res.body.dump()
  }
  // A later mirrored call's copy arrives: had the aborted ones been copied, theirs would be there too.
  await (await mesh.request('http://payments/later')).body.dump()
  await until(() => audit.hits >= 1, 'the later copy')
  assert.deepEqual(audit.seen.map((s) => s.url), ['/later'])
  assert.equal(primary.hits, 1)
})

const errorsOf = (mirror: unknown, extra: object[] = []) => validatePolicy(loadValue([
  service('payments', { endpoints: [{ address: '127.0.0.1:1' }] }),
  ...extra,
  route('payments', { service: 'payments', rules: [{ mirror }] }),
])).issues

test('validation: the mirror\'s service must exist, percent is 0–100, fields are known; a gRPC mirror is a warning', () => {
  const unknown = errorsOf({ service: 'nope' }).find((i) => i.severity === 'error')!
  assert.equal(unknown.resource, 'Route/payments')
  assert.equal(unknown.path, 'spec.rules[0].mirror.service')
  assert.equal(unknown.code, 'WEFT_E_REF_UNKNOWN')
  assert.equal(errorsOf({ percent: 150 }).find((i) => i.severity === 'error')?.path, 'spec.rules[0].mirror.percent')
  assert.equal(errorsOf({ host: 'x' }).find((i) => i.severity === 'error')?.path, 'spec.rules[0].mirror.host')
  assert.deepEqual(errorsOf({}).filter((i) => i.severity === 'error'), [])
  const grpc = errorsOf({ service: 'ledger' }, [service('ledger', { protocol: 'grpc', endpoints: [{ address: '127.0.0.1:2' }] })])
  assert.deepEqual(grpc.filter((i) => i.severity === 'error'), [])
  assert.equal(grpc.find((i) => i.severity === 'warning')?.code, 'WEFT_W_MIRROR_GRPC')
  // Defaults: the route's own service, every endpoint, every call.
  const p = validatePolicy(loadValue([service('payments', { endpoints: [{ address: '127.0.0.1:1' }] }), route('payments', { service: 'payments', rules: [{ mirror: {} }] })]))
  assert.deepEqual(p.routes[0]!.rules[0]!.mirror, { service: 'payments', subset: {}, percent: 100 })
})
