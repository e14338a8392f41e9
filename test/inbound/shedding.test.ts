// test: serial (event-loop delay thresholds, crossed on purpose; scripts/run-tests.mjs runs it alone)
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { request } from 'undici'
import { createMesh, type Mesh } from '../../src/index.js'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'

const quiet = { info() {}, warn() {}, error() {} }

async function server(mesh: Mesh, handler: http.RequestListener): Promise<number> {
  return (await mesh.listen(http.createServer(handler), { port: 0, host: '127.0.0.1' })).port
}

function busyFor(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    // The event loop is blocked: exactly what shedding must notice.
  }
}

test('an event loop past its delay threshold sheds with 503, a retryable code and retry-after, then recovers', async () => {
  const mesh = await createMesh({ service: 'reports', logger: quiet, inbound: { shedding: { maxEventLoopDelayMs: 50, sampleIntervalMs: 60_000 } } })
  let handled = 0
  const port = await server(mesh, (_req, res) => {
    handled++
    res.end('ok')
  })
  try {
    const monitor = mesh.inbound.monitor
    monitor.sample() // a calm baseline
    busyFor(150)
    await new Promise((r) => setTimeout(r, 30)) // the probe notes how late it ran once the loop runs again
    monitor.sample()
    assert.equal(monitor.overloaded, true, monitor.reason)
    const res = await request(`http://127.0.0.1:${port}/r`)
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['weft-error-code'], 'WEFT_ERR_SERVER_OVERLOADED')
    assert.equal(res.headers['retry-after'], '1')
    const body = (await res.body.json()) as { error: { code: string; message: string } }
    assert.match(body.error.message, /event loop blocked \d+ms > 50ms/)
    assert.equal(handled, 0, 'the handler never ran for the shed request')
    await new Promise((r) => setTimeout(r, 30))
    monitor.sample() // calm again
    assert.equal(monitor.overloaded, false)
    const ok = await request(`http://127.0.0.1:${port}/r`)
    assert.equal(await ok.body.text(), 'ok')
  } finally {
    await mesh.close()
  }
})

test('event-loop utilization past its threshold sheds too, and the load is reported in weft-load', async () => {
  const mesh = await createMesh({ service: 'reports', logger: quiet, inbound: { shedding: { maxEventLoopUtilization: 0.5, sampleIntervalMs: 60_000 } } })
  const port = await server(mesh, (_req, res) => res.end('ok'))
  try {
    const monitor = mesh.inbound.monitor
    monitor.sample()
    busyFor(120)
    monitor.sample()
    assert.equal(monitor.overloaded, true)
    assert.match(monitor.reason, /event-loop utilization/)
    const res = await request(`http://127.0.0.1:${port}/r`)
    assert.equal(res.statusCode, 503)
    assert.ok(Number(res.headers['weft-load']) > 0.5, `reported load ${res.headers['weft-load']}`)
    await res.body.dump()
  } finally {
    await mesh.close()
  }
})

test('past inbound.maxConcurrent a request is shed, and a caller\'s mesh retries it on another instance even for POST', async () => {
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const busyMesh = await createMesh({ service: 'payments', logger: quiet, inbound: { maxConcurrent: 1, shedding: false } })
  const idleMesh = await createMesh({ service: 'payments', logger: quiet })
  let busyHandled = 0
  const busyPort = await server(busyMesh, async (_req, res) => {
    busyHandled++
    await held
    res.end('busy')
  })
  const idlePort = await server(idleMesh, (_req, res) => res.end('idle'))
  const caller = await quietMesh([service('payments', { endpoints: [{ address: `127.0.0.1:${busyPort}` }, { address: `127.0.0.1:${idlePort}` }], loadBalancer: { policy: 'round-robin' } })])
  try {
    // Fill the busy instance's only slot directly.
    const first = request(`http://127.0.0.1:${busyPort}/charge`, { method: 'POST', body: 'a' })
    while (busyHandled === 0) await new Promise((r) => setTimeout(r, 5))
    const direct = await request(`http://127.0.0.1:${busyPort}/charge`, { method: 'POST', body: 'b' })
    assert.equal(direct.statusCode, 503)
    assert.equal(direct.headers['weft-error-code'], 'WEFT_ERR_SERVER_OVERLOADED')
    assert.match(((await direct.body.json()) as { error: { message: string } }).error.message, /1 requests in flight reached inbound.maxConcurrent 1/)
    // Through the mesh, POSTs without an Idempotency-Key land on both instances (round-robin);
    // the ones the busy instance sheds are retried on the idle one: nothing was processed.
    for (let i = 0; i < 4; i++) {
      const res = await caller.request('http://payments/charge', { method: 'POST', body: 'c' })
      assert.equal(await res.body.text(), 'idle')
    }
    assert.ok(metricValue(await caller.metrics(), 'weft_retries_total', { reason: 'server-shed' }) >= 1)
    assert.equal(busyHandled, 1, 'no shed request reached the busy handler')
    release()
    assert.equal(await (await first).body.text(), 'busy')
  } finally {
    release()
    await caller.close()
    await busyMesh.close()
    await idleMesh.close()
  }
})

test('a loop that was late but idle (the process was off the CPU, not busy) does not shed', async () => {
  const mesh = await createMesh({ service: 'reports', logger: quiet, inbound: { shedding: { maxEventLoopDelayMs: 50, sampleIntervalMs: 60_000 } } })
  try {
    const monitor = mesh.inbound.monitor
    monitor.sample()
    // Stands in for a stalled, idle process: the probe runs late while the loop did no work.
    ;(monitor as unknown as { probeDue: number }).probeDue = performance.now() - 150
    await new Promise((r) => setTimeout(r, 40))
    monitor.sample()
    assert.equal(monitor.overloaded, false, monitor.reason)
  } finally {
    await mesh.close()
  }
})
