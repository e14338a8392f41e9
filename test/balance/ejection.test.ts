import assert from 'node:assert/strict'
import { test } from 'node:test'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { ok, startUpstream, status } from '../helpers/upstream.js'

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))
const send = (mesh: { request(u: string): Promise<{ statusCode: number; body: { dump(): Promise<void> } }> }) =>
  mesh.request('http://payments/x').then(async (r) => (await r.body.dump(), r.statusCode))

test('consecutive 5xx eject an endpoint; it returns after the ejection time, and a repeat ejection lasts longer', async () => {
  const a = await startUpstream('a')
  const b = await startUpstream('b', status(500))
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: a.address }, { address: b.address }],
    loadBalancer: { policy: 'round-robin' },
    retries: { attempts: 0 },
    circuitBreaker: { enabled: false },
    outlierDetection: { consecutive5xx: 3, baseEjectionTime: '300ms', maxEjectionPercent: 50 },
  })])
  try {
    for (let i = 0; i < 10 && b.hits < 3; i++) await send(mesh)
    assert.equal(b.hits, 3)
    const text = await mesh.metrics()
    assert.equal(metricValue(text, 'weft_endpoint_ejections_total', { endpoint: b.address }), 1)
    assert.match(mesh.log.lines.join('\n'), new RegExp(`ejected ${b.address} from payments for 300ms`))
    const aBefore = a.hits
    for (let i = 0; i < 20; i++) assert.equal(await send(mesh), 200)
    assert.equal(a.hits, aBefore + 20, 'the ejected endpoint gets nothing')
    // Back in rotation after the ejection time.
    b.behaviour = ok('b')
    await settle(350)
    for (let i = 0; i < 10; i++) await send(mesh)
    assert.ok(b.hits > 3, 'returned endpoint receives traffic again')
    // Fails again: the second ejection is twice as long (base × times ejected).
    b.behaviour = status(500)
    for (let i = 0; i < 20 && metricValue(await mesh.metrics(), 'weft_endpoint_ejections_total') < 2; i++) await send(mesh)
    assert.match(mesh.log.lines.join('\n'), new RegExp(`ejected ${b.address} from payments for 600ms`))
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
  }
})

test('ejections stop at maxEjectionPercent, and panic mode spreads over every endpoint', async () => {
  const ups = await Promise.all(['a', 'b', 'c', 'd'].map((n) => startUpstream(n, n === 'a' ? ok(n) : status(500))))
  const mesh = await quietMesh([service('payments', {
    endpoints: ups.map((u) => ({ address: u.address })),
    loadBalancer: { policy: 'round-robin' },
    retries: { attempts: 0 },
    circuitBreaker: { enabled: false },
    outlierDetection: { consecutive5xx: 2, baseEjectionTime: '30s', maxEjectionPercent: 50, panicThreshold: 60 },
  })])
  try {
    for (let i = 0; i < 60; i++) await send(mesh)
    const text = await mesh.metrics()
    assert.equal(metricValue(text, 'weft_endpoint_ejections_total'), 2, '3 of 4 failing, but at most 50 % are ejected')
    // 2 healthy of 4 is below the 60 % panic threshold: traffic spreads over all four, not piled on "a".
    const before = ups.map((u) => u.hits)
    for (let i = 0; i < 40; i++) await send(mesh)
    const got = ups.map((u, i) => u.hits - before[i]!)
    assert.deepEqual(got, [10, 10, 10, 10])
  } finally {
    await mesh.close()
    for (const u of ups) await u.close()
  }
})
