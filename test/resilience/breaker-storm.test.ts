// RELIABILITY L3 at its scale: the circuit is open, the cooldown ends, and 5,000 requests arrive at
// once while the upstream hangs. The upstream sees one probe (the case allows 3), never more at a
// time; every other request fails fast — WEFT_ERR_CIRCUIT_OPEN, or WEFT_ERR_OVERLOADED past the
// service's 1,024 calls in flight — all of them settling while the probe is still hanging, which is
// what "fast" means here without a timing assertion. Once the
// probe is answered the circuit closes and requests flow again. Real node:http upstream on loopback.
import assert from 'node:assert/strict'
import type http from 'node:http'
import { test } from 'node:test'
import { isWeftError } from '../../src/index.js'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { ok, startUpstream, status } from '../helpers/upstream.js'

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('5,000 requests as the cooldown ends, against a hanging upstream: one probe reaches it, the other 4,999 fail fast while it hangs', async () => {
  const up = await startUpstream('hanging', status(500))
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: up.address }],
    timeout: '30s',
    retries: { attempts: 0 },
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '200ms' },
    outlierDetection: { enabled: false },
  })])
  const held: http.ServerResponse[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const r = await mesh.request('http://payments/x')
      await r.body.dump() // an unread body keeps its connection: the probe would queue behind it
      assert.equal(r.statusCode, 500)
    }
    const open = await mesh.request('http://payments/x').catch((e: unknown) => e)
    assert.ok(isWeftError(open, 'WEFT_ERR_CIRCUIT_OPEN'), String(open))
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'payments' }), 1, 'open')

    // From now on the upstream hangs: it answers only when the test lets it.
    let inFlight = 0
    let maxInFlight = 0
    up.behaviour = (_req, res) => {
      maxInFlight = Math.max(maxInFlight, ++inFlight)
      res.once('close', () => inFlight--)
      held.push(res)
    }
    const hitsWhenOpen = up.hits
    await settle(250) // past halfOpenAfter

    let settled = 0
    const storm = Array.from({ length: 5_000 }, (_, i) => mesh.request(`http://payments/storm/${i}`).then(
      (r) => ({ status: r.statusCode as number | string, body: r.body }),
      (e: unknown) => ({ status: isWeftError(e) ? e.code : String(e), body: undefined }),
    ).finally(() => settled++))

    // Everything but the probe settles while the probe still hangs.
    const deadline = Date.now() + 20_000
    while (settled < 4_999 && Date.now() < deadline) await settle(10)
    assert.equal(settled, 4_999, `all but one request settled (settled ${settled})`)
    // The probe reaches the upstream once the loop is free (settling 4,999 calls comes first), and hangs there.
    while (held.length === 0 && Date.now() < deadline) await settle(10)
    await settle(100)
    assert.equal(settled, 4_999, 'still only the probe unsettled: it hangs at the upstream')
    assert.equal(up.hits - hitsWhenOpen, 1, 'exactly one probe reached the upstream')
    assert.ok(maxInFlight <= 3, `at most 3 concurrent probes at the upstream (saw ${maxInFlight})`)
    assert.equal(held.length, 1)

    // The probe decides: answered 200, it closes the circuit.
    ok('hanging')({} as http.IncomingMessage, held[0]!, 0)
    const results = await Promise.all(storm)
    const codes = new Map<number | string, number>()
    for (const r of results) codes.set(r.status, (codes.get(r.status) ?? 0) + 1)
    // Fast failures both: past the service's concurrency limit (1,024 calls in flight; the storm
    // is issued in one turn of the loop, before any open-circuit answer settles) a call is refused
    // as overloaded before it reaches the breaker.
    assert.equal(codes.get(200), 1)
    assert.equal((codes.get('WEFT_ERR_CIRCUIT_OPEN') ?? 0) + (codes.get('WEFT_ERR_OVERLOADED') ?? 0), 4_999, JSON.stringify(Object.fromEntries(codes)))
    assert.ok((codes.get('WEFT_ERR_CIRCUIT_OPEN') ?? 0) >= 1_000, 'the breaker answered the calls within the limit')
    await Promise.all(results.map((r) => r.body?.dump()))
    up.behaviour = ok('hanging')
    assert.equal((await mesh.request('http://payments/after')).statusCode, 200, 'the circuit closed after the probe')
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'payments' }), 0)
  } finally {
    for (const res of held) if (!res.writableEnded) res.destroy()
    await mesh.close()
    await up.close()
  }
})
