import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isWeftError } from '../../src/index.js'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { ok, startUpstream, status } from '../helpers/upstream.js'

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('the circuit opens after consecutive failures, fails fast, then recovers through a half-open probe', async () => {
  const up = await startUpstream('flaky', status(500))
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: up.address }],
    retries: { attempts: 0 },
    circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '300ms' },
    outlierDetection: { enabled: false },
  })])
  try {
    for (let i = 0; i < 3; i++) assert.equal((await mesh.request('http://payments/x')).statusCode, 500)
    const hitsWhenOpen = up.hits
    const err = await mesh.request('http://payments/x').catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_CIRCUIT_OPEN'), String(err))
    assert.equal(err.details.breakerState, 'open')
    assert.equal(err.details.service, 'payments')
    assert.equal(up.hits, hitsWhenOpen, 'an open circuit sends nothing upstream')
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'payments' }), 1)

    // After halfOpenAfter one probe goes through; while it is in flight others fail fast.
    await settle(350)
    up.behaviour = async (_req, res) => {
      await settle(100)
      ok('flaky')(_req, res, 0)
    }
    const probe = mesh.request('http://payments/probe')
    await settle(20)
    const during = await Promise.all(Array.from({ length: 20 }, () => mesh.request('http://payments/y').then((r) => r.statusCode, (e: unknown) => (isWeftError(e) ? e.code : String(e)))))
    assert.deepEqual(new Set(during), new Set(['WEFT_ERR_CIRCUIT_OPEN']), 'half-open allows one probe; the rest fail fast')
    assert.equal((await probe).statusCode, 200)
    assert.equal(up.hits, hitsWhenOpen + 1)
    // The successful probe closed the circuit.
    assert.equal((await mesh.request('http://payments/z')).statusCode, 200)
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'payments' }), 0)
  } finally {
    await mesh.close()
    await up.close()
  }
})

test('one dead endpoint among good ones never opens the service circuit (outlier detection handles it)', async () => {
  const good = await startUpstream('good')
  const bad = await startUpstream('bad', status(503))
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: good.address }, { address: bad.address }],
    loadBalancer: { policy: 'round-robin' },
    circuitBreaker: { consecutiveFailures: 2 },
    outlierDetection: { consecutive5xx: 1000 },
  })])
  try {
    const codes = await Promise.all(Array.from({ length: 100 }, () => mesh.request('http://payments/x').then(async (r) => (await r.body.dump(), r.statusCode))))
    assert.deepEqual(new Set(codes), new Set([200]))
    assert.equal(metricValue(await mesh.metrics(), 'weft_circuit_state', { destination_service: 'payments' }), 0)
  } finally {
    await mesh.close()
    await good.close()
    await bad.close()
  }
})
