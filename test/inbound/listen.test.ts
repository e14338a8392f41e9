import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, test } from 'node:test'
import { request } from 'undici'
import { createMesh, currentContext, isWeftError, type Mesh } from '../../src/index.js'
import { metricValue, quietMesh } from '../helpers/mesh.js'

let mesh: Mesh
let port: number
let handled = 0

before(async () => {
  mesh = await quietMesh([], { service: 'ledger' })
  const server = http.createServer((req, res) => {
    handled++
    const ctx = currentContext()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ url: req.url, traceId: ctx?.traceId, requestId: ctx?.requestId, left: ctx ? Math.round(ctx.remainingMs()) : null }))
  })
  const addr = await mesh.listen(server, { port: 0, host: '127.0.0.1', route: (req) => (req.url?.startsWith('/entries/') ? '/entries/:id' : '') })
  port = addr.port
})
after(() => mesh.close())

const get = (path: string, headers: Record<string, string> = {}) => request(`http://127.0.0.1:${port}${path}`, { headers })

test('mesh.listen runs the server\'s own handler inside the request context and labels metrics with the route template', async () => {
  const res = await get('/entries/42', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-request-id': 'req-1', 'weft-caller': 'web,checkout' })
  const body = (await res.body.json()) as Record<string, unknown>
  assert.equal(res.statusCode, 200)
  assert.equal(body.traceId, '4bf92f3577b34da6a3ce929d0e0e4736', 'the caller\'s trace is joined')
  assert.equal(body.requestId, 'req-1', 'the caller\'s x-request-id is kept')
  assert.equal(body.left, null, 'no deadline was sent: Infinity remains (JSON null)')
  assert.match(String(res.headers['weft-load']), /^(0|1)\.\d\d$/, 'the first answer on a connection reports the server\'s load')
  const text = await mesh.metrics()
  assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { http_route: '/entries/:id', method: 'GET', status_code: '200', source_service: 'checkout', destination_service: 'ledger' }), 1)
  assert.ok(!text.includes('/entries/42'), 'the raw path is never a label value')
})

test('a request whose propagated deadline has passed gets 504 JSON from the error table; the handler does not run', async () => {
  const before = handled
  const res = await get('/entries/1', { 'weft-deadline-ms': '0', 'x-request-id': 'req-2' })
  assert.equal(res.statusCode, 504)
  assert.equal(res.headers['weft-error-code'], 'WEFT_ERR_DEADLINE_EXCEEDED')
  assert.match(String(res.headers['content-type']), /^application\/json/)
  const body = (await res.body.json()) as { error: { code: string; message: string; requestId: string } }
  assert.equal(body.error.code, 'WEFT_ERR_DEADLINE_EXCEEDED')
  assert.equal(body.error.requestId, 'req-2')
  assert.match(body.error.message, /deadline had passed when the request arrived/)
  assert.equal(handled, before, 'the handler was not run')
  assert.equal(metricValue(await mesh.metrics(), 'http_server_request_duration_seconds_count', { status_code: '504', error_code: 'WEFT_ERR_DEADLINE_EXCEEDED' }), 1)
})

test('a live propagated deadline reaches the handler through the context', async () => {
  const res = await get('/x', { 'weft-deadline-ms': '5000' })
  const body = (await res.body.json()) as { left: number }
  assert.ok(body.left > 0 && body.left <= 5000, `remaining ${body.left}`)
})

test('/healthz, /readyz and /metrics are answered on the app server by default', async () => {
  const before = handled
  assert.equal((await (await get('/healthz')).body.text()), 'ok\n')
  const ready = await get('/readyz')
  assert.equal(ready.statusCode, 200)
  await ready.body.dump()
  const metrics = await get('/metrics')
  assert.match(await metrics.body.text(), /http_server_request_duration_seconds_bucket/)
  assert.equal(handled, before, 'health paths never reach the application')
})

test('health can move to an admin port, and inbound options are validated with the option named', async () => {
  const m = await createMesh({ service: 'admin-demo', logger: { info() {}, warn() {}, error() {} }, inbound: { health: { port: 0 } } })
  try {
    const addr = m.adminAddress!
    const res = await request(`http://127.0.0.1:${addr.port}/readyz`)
    assert.equal(res.statusCode, 200)
    await res.body.dump()
  } finally {
    await m.close()
  }
  const bad = [
    [{ inbound: { maxConcurrent: 0 } }, 'inbound.maxConcurrent'],
    [{ inbound: { shedding: { maxEventLoopUtilization: 2 } } }, 'inbound.shedding.maxEventLoopUtilization'],
    [{ inbound: { shedding: { bogus: 1 } } }, 'inbound.shedding.bogus'],
    [{ inbound: { health: { port: 'x' } } }, 'inbound.health.port'],
    [{ handleSignals: 'yes' }, 'handleSignals'],
  ] as const
  for (const [extra, option] of bad) {
    const err = await createMesh({ service: 's', ...(extra as object) }).catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_INVALID_ARG'), String(err))
    assert.match(err.message, new RegExp(option.replace(/\./g, '\\.')))
  }
})

test('mesh.listen raises Node\'s default 5 s keep-alive to 65 s, so callers keep idle connections (and mTLS sessions) instead of reconnecting after 3 s; a value the application set is kept', async () => {
  const res = await get('/entries/7')
  await res.body.dump()
  assert.equal(res.headers['keep-alive'], 'timeout=65', 'the hint undici reads to decide how long to keep the connection')
  const m = await quietMesh([], { service: 'ledger2' })
  try {
    const own = http.createServer((_req, r) => r.end('ok'))
    own.keepAliveTimeout = 7_000
    await m.listen(own, { port: 0, host: '127.0.0.1' })
    assert.equal(own.keepAliveTimeout, 7_000, 'the application\'s own choice stays')
  } finally {
    await m.close()
  }
})
