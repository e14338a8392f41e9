import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isWeftError } from '../../src/index.js'
import { quietMesh, service } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'

test('the per-service concurrency limit fails fast with WEFT_ERR_OVERLOADED', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const up = await startUpstream('a', async (_req, res) => {
    await held
    res.end('done')
  })
  const mesh = await quietMesh([service('payments', { endpoints: [{ address: up.address }], concurrencyLimit: 2 })])
  try {
    const first = [mesh.request('http://payments/1'), mesh.request('http://payments/2')]
    const third = await mesh.request('http://payments/3').catch((e: unknown) => e)
    assert.ok(isWeftError(third, 'WEFT_ERR_OVERLOADED'), String(third))
    assert.equal(third.details.concurrencyLimit, 2)
    assert.equal(third.grpcStatus, 8)
    release()
    for (const p of first) assert.equal(await (await p).body.text(), 'done')
    // Slots are released when the bodies end.
    assert.equal((await mesh.request('http://payments/4')).statusCode, 200)
  } finally {
    release()
    await mesh.close()
    await up.close()
  }
})

test('a connection reset is retried for an idempotent request, not for a POST without a key', async () => {
  const flaky = await startUpstream('flaky', (req) => void req.socket.destroy())
  const good = await startUpstream('good')
  const mesh = await quietMesh([service('payments', {
    endpoints: [{ address: flaky.address }, { address: good.address }],
    loadBalancer: { policy: 'round-robin' },
    retries: { backoff: { base: '1ms', max: '1ms' } },
    outlierDetection: { enabled: false },
  })])
  try {
    assert.equal(await (await mesh.request('http://payments/x')).body.text(), 'ok from good')
    const err = await mesh.request('http://payments/x', { method: 'POST', body: 'x' }).catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_UPSTREAM_RESET'), String(err))
    assert.deepEqual(err.details.endpointsTried, [flaky.address])
    assert.match(String(err.details.retriesStopped), /POST without an Idempotency-Key/)
    assert.equal(err.details.configVersion, 1)
    assert.equal(err.details.route, 'default')
  } finally {
    await mesh.close()
    await flaky.close()
    await good.close()
  }
})
