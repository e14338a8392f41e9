// weft/fastify against a real Fastify 5 app on 127.0.0.1:0: `fastify.register(weftPlugin, { mesh })`
// puts the mesh's inbound stack (deadline, shedding, telemetry, request context, health, drain) in
// front of the routes of the context it is registered in.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { weftPlugin } from '../../adapters/fastify/index.js'
import { currentContext } from '../../src/index.js'
import { metricValue, service } from '../helpers/mesh.js'
import { assertLoadHeader, oneConnection, cleanup, DURATION_COUNT, gate, meshWith, SPAN_ID, TRACE_ID, upstream, assertShed } from '../helpers/inbound-kit.js'

/** A Fastify app closed at the end of the file. */
function fastify(): FastifyInstance {
  const app = Fastify()
  cleanup(() => app.close())
  return app
}

/** Listens on 127.0.0.1:0 and returns the base URL. */
async function serve(app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' })
}

/**
 * POSTs a JSON body that leaves after the headers (node:http, no keep-alive), so Fastify runs the
 * onRequest hook first and parses the body in a later I/O callback, outside the hook's call stack.
 */
function postLate(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.flushHeaders()
    setTimeout(() => req.end(body), 20)
  })
}

/** Fetches `url` and reads the whole body. */
async function get(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, init)
  return { status: res.status, headers: res.headers, text: await res.text() }
}

test('weftPlugin is a fastify-plugin named weft for Fastify 5.x', () => {
  // Why: the fastify-plugin metadata is what lets it skip encapsulation and be checked against the Fastify version.
  const meta = (weftPlugin as unknown as Record<symbol, unknown>)[Symbol.for('plugin-meta')] as { name?: string; fastify?: string }
  assert.equal(meta.name, 'weft')
  assert.equal(meta.fastify, '5.x')
})

test('registered at the root: every route is covered, metrics carry the route template, each load sample reaches the connection', async () => {
  // Why: label cardinality must come from Fastify's routes (prefixes included), never from raw paths.
  // Samples only when the test takes one (monitor.sample()), so none falls between two requests.
  const mesh = await meshWith([], { shedding: { sampleIntervalMs: 3_600_000, maxEventLoopDelayMs: 3_600_000 } })
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  app.get('/users/:id', async (request) => ({ id: (request.params as { id: string }).id }))
  await app.register(async (api) => {
    api.get('/users/:id', async (request) => ({ api: (request.params as { id: string }).id }))
    api.get('/fail/:id', async () => {
      throw new Error('api handler failed')
    })
  }, { prefix: '/api' })
  await app.register(async (org) => {
    org.get('/users/:id', async (request) => request.params)
  }, { prefix: '/orgs/:org' })
  app.get('/boom', async () => {
    throw new Error('handler failed')
  })
  const base = await serve(app)

  const conn = oneConnection(base)
  for (const [path, status] of [['/users/42', 200], ['/users/43', 200], ['/api/users/7', 200], ['/orgs/acme/users/1', 200], ['/api/fail/1', 500], ['/boom', 500], ['/missing', 404]] as const) {
    mesh.inbound.monitor.sample()
    const res = await conn(path)
    assert.equal(res.status, status, path)
    assertLoadHeader(res, path)
    const again = await conn(path)
    assert.equal(again.headers.get('weft-load'), null, `${path} again on the same connection, same sample: not repeated`)
  }

  const text = await mesh.metrics()
  const labels = { method: 'GET', status_code: '200', source_service: 'unknown', destination_service: 'checkout', error_code: '' }
  // Each path was asked twice (the second time for the load header's absence).
  assert.equal(metricValue(text, DURATION_COUNT, { ...labels, http_route: '/users/:id' }), 4)
  assert.equal(metricValue(text, DURATION_COUNT, { ...labels, http_route: '/api/users/:id' }), 2)
  assert.equal(metricValue(text, DURATION_COUNT, { ...labels, http_route: '/orgs/:org/users/:id' }), 2)
  assert.equal(metricValue(text, DURATION_COUNT, { status_code: '500', http_route: '/boom' }), 2)
  assert.equal(metricValue(text, DURATION_COUNT, { status_code: '500', http_route: '/api/fail/:id' }), 2)
  assert.doesNotMatch(text, /http_route="\/(api\/|orgs\/acme\/)?users\/\d+"/, 'no raw path is ever a label value')
})

test('registered inside a child plugin: only that context\'s routes are covered', async () => {
  // Why: fastify-plugin shares the hooks with the registering context only, so a sub-app can opt in alone.
  const mesh = await meshWith()
  const app = fastify()
  await app.register(async (child) => {
    await child.register(weftPlugin, { mesh })
    child.get('/inside/:id', async () => 'inside')
  })
  app.get('/outside/:id', async () => 'outside')
  const base = await serve(app)

  const inside = await get(`${base}/inside/1`)
  assert.equal(inside.text, 'inside')
  assertLoadHeader(inside, '/inside/1')
  const outside = await get(`${base}/outside/1`)
  assert.equal(outside.text, 'outside')
  assert.equal(outside.headers.get('weft-load'), null, 'a route outside the context is not meshed')

  const text = await mesh.metrics()
  assert.equal(metricValue(text, DURATION_COUNT, { http_route: '/inside/:id', status_code: '200' }), 1)
  assert.doesNotMatch(text, /http_route="\/outside/, 'no server metric for the uncovered route')
})

test('request.weft is the InboundContext (trace id, request id, deadline) inside handlers', async () => {
  // Why: handlers that need the deadline or ids read them off the request, and it is the same context outbound calls use.
  const mesh = await meshWith()
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  let seen: { traceId?: string; requestId?: string; deadline?: number; remaining?: number; same?: boolean; service?: string } = {}
  app.post('/ctx', async (request) => {
    await new Promise((r) => setTimeout(r, 5))
    const ctx = request.weft
    seen = { traceId: ctx?.traceId, requestId: ctx?.requestId, deadline: ctx?.deadline, remaining: ctx?.remainingMs(), same: ctx === currentContext(), service: ctx?.service }
    return { ok: true }
  })
  const base = await serve(app)

  const res = await get(`${base}/ctx`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, 'x-request-id': 'req-77', 'weft-deadline-ms': '5000' },
    body: JSON.stringify({ a: 1 }),
  })
  assert.equal(res.status, 200)
  assert.equal(seen.traceId, TRACE_ID)
  assert.equal(seen.requestId, 'req-77')
  assert.equal(seen.service, 'checkout')
  assert.ok(Number.isFinite(seen.deadline), 'a propagated deadline makes the context deadline finite')
  assert.ok(seen.remaining! > 0 && seen.remaining! < 5000, `deadline is live and shrinking: ${seen.remaining}`)
  assert.equal(seen.same, true, 'request.weft is the context currentContext() returns')
})

test('an expired propagated deadline is answered 504 in JSON (same shape as Express) and the handler never runs', async () => {
  // Why: work for a caller that has already given up is wasted; the error body is the mesh's contract.
  const mesh = await meshWith()
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  let ran = 0
  app.get('/work', async () => {
    ran++
    return 'done'
  })
  const base = await serve(app)

  const res = await fetch(`${base}/work`, { headers: { 'weft-deadline-ms': '0', 'x-request-id': 'req-1' } })
  assert.equal(res.status, 504)
  assert.equal(res.headers.get('weft-error-code'), 'WEFT_ERR_DEADLINE_EXCEEDED')
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/)
  assertLoadHeader(res, '504')
  const body = (await res.json()) as { error: { code: string; message: string; requestId: string } }
  assert.deepEqual(Object.keys(body), ['error'])
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'requestId'])
  assert.equal(body.error.code, 'WEFT_ERR_DEADLINE_EXCEEDED')
  assert.equal(typeof body.error.message, 'string')
  assert.ok(body.error.message.length > 0)
  assert.equal(body.error.requestId, 'req-1')
  assert.equal(ran, 0, 'the handler was not run')

  const live = await get(`${base}/work`, { headers: { 'weft-deadline-ms': '5000' } })
  assert.equal(live.text, 'done')
  assert.equal(ran, 1)
  assert.equal(metricValue(await mesh.metrics(), DURATION_COUNT, { status_code: '504', error_code: 'WEFT_ERR_DEADLINE_EXCEEDED' }), 1)
})

test('past inbound.maxConcurrent a request is shed with 503 and retry-after, then served after release', async () => {
  // Why: a full instance must refuse cheaply (and say so) so the caller's mesh retries elsewhere.
  const mesh = await meshWith([], { maxConcurrent: 1 })
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  const held = gate()
  let ran = 0
  app.get('/slow', async () => {
    ran++
    held.enter()
    await held.released
    return 'slow done'
  })
  app.get('/fast', async () => {
    ran++
    return 'fast done'
  })
  const base = await serve(app)

  const slow = fetch(`${base}/slow`)
  await held.reached
  const shed = await fetch(`${base}/fast`)
  await assertShed(shed, mesh, 'past maxConcurrent')
  assert.equal(ran, 1, 'the shed request never reached a handler')

  held.release()
  const first = await slow
  assert.equal(first.status, 200)
  assert.equal(await first.text(), 'slow done')
  const again = await get(`${base}/fast`)
  assert.equal(again.status, 200)
  assert.equal(again.text, 'fast done')
})

test('trace, deadline and caller chain reach outbound calls made after body parsing and an await', async () => {
  // Why: the body arrives after the headers and is parsed outside the onRequest hook; the handler must still be
  // inside the request context so it forwards nothing by hand.
  const up = await upstream('payments')
  const mesh = await meshWith([service('payments', { endpoints: [{ address: up.address }] })])
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  app.post('/orders/:id', async (request) => {
    const { amount } = request.body as { amount: number }
    await new Promise((r) => setTimeout(r, 10))
    const out = await mesh.request(`http://payments/charge/${(request.params as { id: string }).id}?amount=${amount}`)
    return { status: out.statusCode, body: await out.body.text() }
  })
  const base = await serve(app)

  const body = JSON.stringify({ amount: 5 })
  const res = await postLate(`${base}/orders/9`, { traceparent: `00-${TRACE_ID}-${SPAN_ID}-01`, 'weft-deadline-ms': '5000', 'weft-caller': 'x' }, body)
  assert.equal(res.status, 200)
  assert.deepEqual(JSON.parse(res.body), { status: 200, body: 'ok from payments' })
  const seen = up.seen.at(-1)!
  assert.equal(seen.url, '/charge/9?amount=5')
  const tp = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(seen.headers.traceparent))
  assert.ok(tp, `traceparent is well formed: ${seen.headers.traceparent}`)
  assert.equal(tp[1], TRACE_ID, 'same trace')
  assert.notEqual(tp[2], SPAN_ID, 'new span')
  const left = Number(seen.headers['weft-deadline-ms'])
  assert.ok(left > 0 && left < 5000, `remaining deadline passed on: ${left}`)
  assert.equal(seen.headers['weft-caller'], 'x,checkout')
  assert.equal(metricValue(await mesh.metrics(), DURATION_COUNT, { method: 'POST', source_service: 'x', http_route: '/orders/:id', status_code: '200' }), 1)

  // With no incoming chain the chain starts at this service.
  const plain = await postLate(`${base}/orders/9`, {}, body)
  assert.equal(plain.status, 200)
  assert.equal(up.seen.at(-1)!.headers['weft-caller'], 'checkout')
})

test('health paths are served by the plugin by default, and reach the app with health: false', async () => {
  // Why: probes and scraping work with no extra server, and can be turned off for apps that own those paths.
  const mesh = await meshWith([], 'defaults')
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  app.get('/users/:id', async () => 'user')
  const base = await serve(app)
  await get(`${base}/users/1`) // one app request, so the histogram has a sample

  assert.equal((await get(`${base}/healthz`)).status, 200)
  assert.equal((await get(`${base}/readyz`)).status, 200)
  const metrics = await get(`${base}/metrics`)
  assert.equal(metrics.status, 200)
  assert.match(metrics.headers.get('content-type') ?? '', /^text\/plain/)
  assert.match(metrics.text, /^# TYPE http_server_request_duration_seconds histogram$/m)
  assert.match(metrics.text, /^http_server_request_duration_seconds_count\{[^}]*destination_service="checkout"[^}]*\} 1$/m)

  const off = await meshWith([], { health: false })
  const app2 = fastify()
  await app2.register(weftPlugin, { mesh: off })
  const base2 = await serve(app2)
  const conn2 = oneConnection(base2)
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    off.inbound.monitor.sample()
    const res = await conn2(path)
    assert.equal(res.status, 404, `${path} reaches the app (Fastify's 404)`)
    assertLoadHeader(res, path)
  }
})

test('close() drains: readiness turns 503 at once, the held request still completes, then close resolves', async () => {
  // Why: rolling restarts must stop new traffic (readiness) without cutting requests in flight.
  const mesh = await meshWith()
  const app = fastify()
  await app.register(weftPlugin, { mesh })
  const held = gate()
  app.get('/held', async () => {
    held.enter()
    await held.released
    return 'finished'
  })
  const base = await serve(app)

  const inFlight = fetch(`${base}/held`)
  await held.reached
  let closed = false
  const closing = mesh.close().then(() => (closed = true))

  const readyz = await get(`${base}/readyz`)
  assert.equal(readyz.status, 503)
  assert.equal(closed, false, 'close waits for the request in flight')

  held.release()
  const res = await inFlight
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('connection'), 'close', 'the in-flight response asks the client to close its connection')
  assert.equal(await res.text(), 'finished')
  await closing
  assert.equal(closed, true)
})
