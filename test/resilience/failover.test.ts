import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Mesh } from '../../src/index.js'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { deadPort, startUpstream, type Upstream } from '../helpers/upstream.js'

let ups: Upstream[]
let mesh: Mesh
let dead: number

before(async () => {
  ups = [await startUpstream('a'), await startUpstream('b')]
  dead = await deadPort()
  mesh = await quietMesh([service('payments', {
    endpoints: [{ address: ups[0]!.address }, { address: `127.0.0.1:${dead}` }, { address: ups[1]!.address }],
    loadBalancer: { policy: 'round-robin' },
  })])
})
after(async () => {
  await mesh.close()
  for (const u of ups) await u.close()
})

test('1 of 3 endpoints down: every idempotent request succeeds', async () => {
  const results = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
    const res = await mesh.request(`http://payments/item/${i}`, { method: i % 3 === 0 ? 'PUT' : 'GET' })
    await res.body.dump()
    return res.statusCode
  }))
  assert.deepEqual(new Set(results), new Set([200]))
  assert.equal(ups[0]!.hits + ups[1]!.hits, 300)
  const text = await mesh.metrics()
  assert.ok(metricValue(text, 'weft_retries_total', { reason: 'connect-failure' }) >= 1, 'the failures were absorbed by retries')
  // Outlier detection took the dead endpoint out of rotation after consecutive connect failures.
  assert.equal(metricValue(text, 'weft_endpoint_ejections_total', { endpoint: `127.0.0.1:${dead}` }), 1)
})
