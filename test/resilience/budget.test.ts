import assert from 'node:assert/strict'
import { test } from 'node:test'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { startUpstream, status } from '../helpers/upstream.js'
import { RetryBudget } from '../../src/resilience/retry-budget.js'

test('RetryBudget: ratio of recent requests plus a per-second reserve, expiring with the window', () => {
  let now = 1
  const b = new RetryBudget(0.2, 1, 10_000, () => now)
  for (let i = 0; i < 100; i++) b.deposit()
  let granted = 0
  while (b.tryWithdraw()) granted++
  assert.equal(granted, 30, '20 % of 100 requests + 1/s × 10 s')
  now += 11_000 // deposits and withdrawals expire after the ttl
  assert.equal(b.available(), 10)
})

test('an upstream answering 100 % 503: retries stay within the budget (measured amplification)', async () => {
  const up = await startUpstream('sick', status(503))
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: up.address }],
    retries: { attempts: 3, backoff: { base: '1ms', max: '2ms' }, budget: { ratio: 0.2, minPerSecond: 1 } },
    circuitBreaker: { enabled: false },
    outlierDetection: { enabled: false },
  })])
  try {
    const N = 400
    const statuses: number[] = []
    for (let batch = 0; batch < N / 20; batch++) {
      statuses.push(...await Promise.all(Array.from({ length: 20 }, async () => {
        const res = await mesh.request('http://payments/charge')
        await res.body.dump()
        return res.statusCode
      })))
    }
    assert.deepEqual(new Set(statuses), new Set([503]), 'the caller sees the upstream answer once retries stop')
    const amplification = up.hits / N
    // Without a budget, attempts: 3 would send 4× the requests.
    const allowed = (0.2 * N + 1 * 10) / N + 1
    assert.ok(amplification <= allowed + 0.01, `amplification ${amplification.toFixed(3)} ≤ ${allowed.toFixed(3)}`)
    assert.ok(amplification > 1.1, `retries did happen (${amplification.toFixed(3)})`)
    const text = await mesh.metrics()
    assert.ok(metricValue(text, 'weft_retry_budget_exhausted_total') > 0)
    assert.equal(metricValue(text, 'weft_retries_total', { reason: '503' }), up.hits - N)
  } finally {
    await mesh.close()
    await up.close()
  }
})
