import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { request } from 'undici'
import { createMesh } from '../../src/index.js'

const quiet = { info() {}, warn() {}, error() {} }

test('mesh.close() drains: readiness goes false, in-flight requests all finish with 200, then the server closes', async () => {
  // Health on an admin port, as a kubelet would probe it: the app's port stops accepting at once.
  const mesh = await createMesh({ service: 'orders', logger: quiet, inbound: { drainTimeoutMs: 5_000, health: { port: 0 } } })
  const admin = `http://127.0.0.1:${mesh.adminAddress!.port}`
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  let started = 0
  const server = http.createServer(async (req, res) => {
    if (req.url === '/slow') {
      started++
      await held
    }
    res.end('done')
  })
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${port}`
  const warm = await request(`${admin}/readyz`)
  assert.equal(warm.statusCode, 200)
  await warm.body.dump()

  const inFlight = Array.from({ length: 5 }, () => request(`${url}/slow`))
  while (started < 5) await new Promise((r) => setTimeout(r, 5))
  const closing = mesh.close()
  await new Promise((r) => setTimeout(r, 20))

  assert.equal(server.listening, false, 'no new connections are accepted')
  const refused = await request(`${url}/x`).catch((e: Error & { code?: string }) => e)
  assert.ok(refused instanceof Error && /ECONNREFUSED/.test(String((refused as { code?: string }).code ?? refused.message)), `new connection refused (${String(refused)})`)
  const ready = await request(`${admin}/readyz`)
  assert.equal(ready.statusCode, 503, 'readiness is false while draining')
  assert.equal(await ready.body.text(), 'draining\n')

  release()
  const results = await Promise.all(inFlight)
  for (const r of results) {
    assert.equal(r.statusCode, 200)
    assert.equal(r.headers.connection, 'close', 'responses during drain ask the client to close')
    assert.equal(await r.body.text(), 'done')
  }
  await closing
})

test('a drain that outlasts drainTimeoutMs closes the remaining connections instead of hanging', async () => {
  const mesh = await createMesh({ service: 'orders', logger: quiet, inbound: { drainTimeoutMs: 100 } })
  const server = http.createServer(() => {
    // Never answers.
  })
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  const stuck = request(`http://127.0.0.1:${port}/stuck`).catch((e: Error) => e)
  await new Promise((r) => setTimeout(r, 50))
  await mesh.close()
  const outcome = await stuck
  assert.ok(outcome instanceof Error, 'the stuck request was cut off when the drain timed out')
})

test('with handleSignals: true, SIGTERM drains (the request in flight finishes) and the process exits 0', async () => {
  const { fork } = await import('node:child_process')
  const child = fork(new URL('../fixtures/signal-instance.ts', import.meta.url).pathname, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  try {
    const { port } = await new Promise<{ port: number }>((r) => child.once('message', (m) => r(m as { port: number })))
    const started = new Promise((r) => child.once('message', r))
    const inFlight = request(`http://127.0.0.1:${port}/slow`)
    await started
    child.kill('SIGTERM')
    const res = await inFlight
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'finished')
    assert.equal(await exited, 0)
  } finally {
    child.kill('SIGKILL')
  }
})
