// RELIABILITY L1 across hops: client → A → B → leaf, every hop a mesh with retries (3 attempts) and
// a retry budget (20 % of recent requests + 1/s over 10 s), the leaf answering 503 to everything.
// Budgets multiply, attempts do not: the leaf sees at most 1.2³ × offered (plus each hop's small
// per-second reserve), never the 4³ × that three hops of 3 retries would send without them.
// Real node:http servers on loopback behind mesh.listen; the handlers forward with no retry code.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { metricValue, service } from '../helpers/mesh.js'
import { startUpstream, status } from '../helpers/upstream.js'

const quiet = { info() {}, warn() {}, error() {} }
const RATIO = 0.2
const MIN_PER_SECOND = 1
const TTL_S = 10
/** Each hop's reserve: retries allowed on top of the ratio within one window. */
const RESERVE = MIN_PER_SECOND * TTL_S
const RETRIES = { attempts: 3, backoff: { base: '1ms', max: '2ms' }, budget: { ratio: RATIO, minPerSecond: MIN_PER_SECOND } }

/** A mesh for `name` that calls `calls` (at `address`) with the chain's retry settings. */
function meshCalling(name: string, calls: string, address: string): Promise<Mesh> {
  return createMesh({
    service: name,
    logger: quiet,
    config: [service(calls, { endpoints: [{ address }], retries: RETRIES, circuitBreaker: { enabled: false }, outlierDetection: { enabled: false } })],
  })
}

/** A served hop: its handler makes one call downstream and answers with that call's status. */
async function hop(name: string, calls: string, address: string): Promise<{ mesh: Mesh; address: string; received: () => number }> {
  const mesh = await meshCalling(name, calls, address)
  let received = 0
  const server = http.createServer(async (_req, res) => {
    received++
    const down = await mesh.request(`http://${calls}/work`)
    await down.body.dump()
    res.writeHead(down.statusCode).end()
  })
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  return { mesh, address: `127.0.0.1:${port}`, received: () => received }
}

test('a 3-hop chain to a leaf answering 100 % 503: the leaf sees at most 1.2³ × the offered requests, not 4³', async () => {
  const leaf = await startUpstream('leaf', status(503))
  const b = await hop('b', 'leaf', leaf.address)
  const a = await hop('a', 'b', b.address)
  const client = await meshCalling('client', 'a', a.address)
  try {
    const N = 400
    const statuses = new Set<number>()
    // The whole run fits in one budget window (10 s), so every hop's reserve counts once.
    const started = performance.now()
    for (let batch = 0; batch < N / 20; batch++) {
      await Promise.all(Array.from({ length: 20 }, async () => {
        const res = await client.request('http://a/start')
        await res.body.dump()
        statuses.add(res.statusCode)
      }))
    }
    assert.ok(performance.now() - started < TTL_S * 1000, 'the run stayed within one budget window')
    assert.deepEqual([...statuses], [503], 'the leaf\'s answer comes back through every hop')

    // Each hop's budget bounds what it sends to the next: received(next) ≤ (1 + ratio) × received(this) + reserve.
    const bound = (offered: number) => (1 + RATIO) * offered + RESERVE
    const atA = a.received()
    const atB = b.received()
    const atLeaf = leaf.hits
    assert.ok(atA <= bound(N), `A received ${atA} ≤ ${bound(N)}`)
    assert.ok(atB <= bound(atA), `B received ${atB} ≤ ${bound(atA).toFixed(1)}`)
    assert.ok(atLeaf <= bound(atB), `the leaf received ${atLeaf} ≤ ${bound(atB).toFixed(1)}`)
    const limit = bound(bound(bound(N)))
    assert.ok(atLeaf <= limit, `the leaf received ${atLeaf} ≤ 1.2³ × ${N} + reserves = ${limit.toFixed(1)} (without budgets: up to ${4 ** 3 * N})`)
    // Retries did happen at every hop (else the test shows nothing): each hop sent more than it was asked to.
    assert.ok(atA > N && atB > atA && atLeaf > atB, `amplification grew hop by hop: ${N} → ${atA} → ${atB} → ${atLeaf}`)
    for (const [name, mesh, downstream] of [['client', client, 'a'], ['a', a.mesh, 'b'], ['b', b.mesh, 'leaf']] as const) {
      const text = await mesh.metrics()
      assert.ok(metricValue(text, 'weft_retry_budget_exhausted_total', { destination_service: downstream }) > 0, `${name}'s budget for ${downstream} ran out`)
    }
  } finally {
    await client.close()
    await a.mesh.close()
    await b.mesh.close()
    await leaf.close()
  }
})
