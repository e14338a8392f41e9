// `weft sidecar` as a library (src/sidecar): two plain node:http apps that know nothing of Weft
// (standing in for services that are not Node) talk through their sidecars. Real servers, real
// HTTP clients (node:http in absolute-form as HTTP_PROXY makes them, undici with a Host header, the
// `ws` WebSocket client), all on 127.0.0.1.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { startSidecar, type Sidecar } from '../../src/sidecar/index.js'
import { capturingLogger, metricValue, service } from '../helpers/mesh.js'

interface Seen {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  body: string
}

/** An app that answers every request with what it saw (JSON), and echoes WebSocket messages. */
async function recordingApp(t: { after(fn: () => unknown): void }): Promise<{ port: number; seen: Seen[]; server: http.Server }> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }
      seen.push(s)
      res.setHeader('x-app', 'orders')
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ url: s.url, body }))
    })
  })
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws, req) => ws.on('message', (m) => ws.send(`orders${req.url}:${String(m)}`)))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => {
    // Open WebSockets are no request node's server tracks: end them, or close() waits on them.
    for (const ws of wss.clients) ws.terminate()
    wss.close()
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { port: (server.address() as AddressInfo).port, seen, server }
}

/** A request in absolute-form to a proxy (what HTTP_PROXY makes curl and most clients send). */
function viaProxy(proxy: AddressInfo, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.port, method: init.method ?? 'GET', path: url, headers: { host: new URL(url).host, ...init.headers } }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end(init.body)
  })
}

async function pair(t: { after(fn: () => unknown): void }) {
  const app = await recordingApp(t)
  const orders: Sidecar = await startSidecar({ mesh: { service: 'orders', config: [], logger: capturingLogger() }, app: { host: '127.0.0.1', port: app.port }, inbound: { host: '127.0.0.1', port: 0 }, outbound: false })
  t.after(() => orders.close())
  const web: Sidecar = await startSidecar({
    mesh: { service: 'web', config: [service('orders', { endpoints: [{ address: `127.0.0.1:${orders.inbound.port}` }] })], logger: capturingLogger() },
    app: { host: '127.0.0.1', port: 9 },
    inbound: { host: '127.0.0.1', port: 0 },
    outbound: { host: '127.0.0.1', port: 0 },
  })
  t.after(() => web.close())
  return { app, orders, web }
}

test('an app calls another through both sidecars: absolute-form (HTTP_PROXY) and Host-header requests, bodies both ways, trace context added, a forged x-forwarded-client-cert dropped; both meshes measure the call', async (t) => {
  const { app, orders, web } = await pair(t)
  const r = await viaProxy(web.outbound!, 'http://orders/orders/7?x=1', { method: 'POST', headers: { 'content-type': 'text/plain', 'x-forwarded-client-cert': 'By=evil;URI=spiffe://evil/sa/admin' }, body: 'one order' })
  assert.equal(r.status, 200)
  assert.deepEqual(JSON.parse(r.body), { url: '/orders/7?x=1', body: 'one order' })
  assert.equal(r.headers['x-app'], 'orders', 'the app\'s response headers come back')
  const s = app.seen[0]!
  assert.equal(s.method, 'POST')
  assert.equal(s.headers.host, 'orders')
  assert.match(String(s.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  assert.equal(s.headers['weft-caller'], 'web')
  assert.equal(s.headers['x-forwarded-client-cert'], undefined, 'no mTLS here, and what the caller sent is never passed on')
  assert.equal(s.headers['x-forwarded-proto'], 'http')

  // Origin-form with Host: the app pointed at the proxy's address as if it were the service.
  const r2 = await request(`http://127.0.0.1:${web.outbound!.port}/missing`, { headers: { host: 'orders' } })
  assert.equal(r2.statusCode, 404, 'the app\'s own status passes through untouched')
  assert.deepEqual(await r2.body.json(), { url: '/missing', body: '' })

  const client = await web.mesh.metrics()
  assert.equal(metricValue(client, 'http_client_request_duration_seconds_count', { destination_service: 'orders' }), 2)
  const server = await orders.mesh.metrics()
  assert.equal(metricValue(server, 'http_server_request_duration_seconds_count', { source_service: 'web', status_code: '200' }), 1)
  assert.equal(metricValue(server, 'http_server_request_duration_seconds_count', { source_service: 'web', status_code: '404' }), 1)
})

test('the outbound proxy refuses what is not a mesh service (404 WEFT_ERR_NOT_FOUND, not an open proxy) and CONNECT tunnels (405); an app that is down is a 503 naming its address', async (t) => {
  const { app, web } = await pair(t)
  const r = await viaProxy(web.outbound!, 'http://example.com/')
  assert.equal(r.status, 404)
  assert.equal(r.headers['weft-error-code'], 'WEFT_ERR_NOT_FOUND')
  assert.match((JSON.parse(r.body) as { error: { message: string } }).error.message, /"example\.com" is not a service the mesh knows/)

  const tunnel = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: web.outbound!.port, method: 'CONNECT', path: 'orders:443' })
    req.on('connect', (res, socket) => {
      socket.destroy()
      resolve(res.statusCode ?? 0)
    })
    req.on('response', (res) => resolve(res.statusCode ?? 0))
    req.on('error', reject)
    req.end()
  })
  assert.equal(tunnel, 405)

  await new Promise<void>((r) => {
    app.server.closeAllConnections()
    app.server.close(() => r())
  })
  const down = await viaProxy(web.outbound!, 'http://orders/x')
  assert.equal(down.status, 503)
  assert.equal(down.headers['weft-error-code'], 'WEFT_ERR_CONNECT_FAILED')
  assert.match((JSON.parse(down.body) as { error: { message: string } }).error.message, new RegExp(`the application at 127\\.0\\.0\\.1:${app.port} did not answer`))
})

test('a WebSocket from one app to the other through both sidecars (the ws library\'s client, Host: orders)', async (t) => {
  const { web } = await pair(t)
  const ws = new WebSocket(`ws://127.0.0.1:${web.outbound!.port}/chat`, { headers: { host: 'orders' } })
  t.after(() => ws.terminate())
  const reply = await new Promise<string>((resolve, reject) => {
    ws.on('open', () => ws.send('hi'))
    ws.on('message', (m) => resolve(String(m)))
    ws.on('error', reject)
    ws.on('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)))
  })
  assert.equal(reply, 'orders/chat:hi')
  assert.equal(metricValue(await web.mesh.metrics(), 'http_client_request_duration_seconds_count', { destination_service: 'orders', status_code: '101' }), 1)
})

test('under a daemon, sidecars register their inbound listener and speak mTLS: the app learns its caller\'s SPIFFE ID from x-forwarded-client-cert, and an AuthorizationPolicy on that ID holds for the sidecar\'s app', async (t) => {
  const { startTestDaemon, applyPolicy } = await import('../helpers/daemon.js')
  const { waitEndpoints } = await import('../helpers/control-kit.js')
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const app = await recordingApp(t)
  const orders = await startSidecar({ mesh: { service: 'orders', control: d.url, token: d.joinToken, logger: capturingLogger() }, app: { host: '127.0.0.1', port: app.port }, inbound: { host: '127.0.0.1', port: 0 }, outbound: false })
  t.after(() => orders.close())
  const web = await startSidecar({ mesh: { service: 'web', control: d.url, token: d.joinToken, logger: capturingLogger() }, app: { host: '127.0.0.1', port: 9 }, inbound: { host: '127.0.0.1', port: 0 }, outbound: { host: '127.0.0.1', port: 0 } })
  t.after(() => web.close())
  assert.deepEqual(await waitEndpoints(web.mesh, 'orders', 1), [`127.0.0.1:${orders.inbound.port}`], 'the inbound listener is what registered')

  const r = await viaProxy(web.outbound!, 'http://orders/orders/1')
  assert.equal(r.status, 200, r.body)
  assert.equal(app.seen[0]!.headers['x-forwarded-client-cert'], 'By=spiffe://weft.local/ns/default/sa/orders;URI=spiffe://weft.local/ns/default/sa/web')
  assert.equal(app.seen[0]!.headers['x-forwarded-proto'], 'https')

  // Plaintext straight to the sidecar's inbound port: STRICT mTLS refuses it before the app.
  const plain = await request(`http://127.0.0.1:${orders.inbound.port}/orders/2`)
  assert.equal(plain.statusCode, 401)
  await plain.body.text()

  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: AuthorizationPolicy\nmetadata: { name: orders-deny-web }\nspec:\n  service: orders\n  action: DENY\n  rules:\n    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/web"] }]\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const deadline = Date.now() + 5_000
  let denied = await viaProxy(web.outbound!, 'http://orders/orders/3')
  while (denied.status !== 403 && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 100))
    denied = await viaProxy(web.outbound!, 'http://orders/orders/3')
  }
  assert.equal(denied.status, 403)
  assert.equal(denied.headers['weft-error-code'], 'WEFT_ERR_FORBIDDEN')
  assert.match(denied.body, /orders-deny-web/)
  assert.ok(app.seen.every((s) => s.url !== '/orders/2'), 'the plaintext call never reached the app')
})

test('a 1 MiB response written in slices streams through both sidecars whole; a caller that goes away cancels the app\'s request behind both', async (t) => {
  const slow = { arrived: 0, cancelled: 0 }
  const app = http.createServer((req, res) => {
    if (req.url === '/big') {
      let n = 0
      const slice = Buffer.alloc(16 * 1024, 'x')
      const more = (): void => {
        if (n++ === 64) return void res.end()
        res.write(slice)
        setImmediate(more)
      }
      return more()
    }
    slow.arrived++
    res.on('close', () => {
      if (!res.writableFinished) slow.cancelled++
    })
  })
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => {
    app.closeAllConnections()
    app.close(() => r())
  }))
  const orders = await startSidecar({ mesh: { service: 'orders', config: [], logger: capturingLogger() }, app: { host: '127.0.0.1', port: (app.address() as AddressInfo).port }, inbound: { host: '127.0.0.1', port: 0 }, outbound: false })
  t.after(() => orders.close())
  const web = await startSidecar({ mesh: { service: 'web', config: [service('orders', { endpoints: [{ address: `127.0.0.1:${orders.inbound.port}` }] })], logger: capturingLogger() }, app: { host: '127.0.0.1', port: 9 }, inbound: { host: '127.0.0.1', port: 0 }, outbound: { host: '127.0.0.1', port: 0 } })
  t.after(() => web.close())

  const big = await request(`http://127.0.0.1:${web.outbound!.port}/big`, { headers: { host: 'orders' } })
  assert.equal(big.statusCode, 200)
  assert.equal((await big.body.arrayBuffer()).byteLength, 64 * 16 * 1024)

  const req = http.request({ host: '127.0.0.1', port: web.outbound!.port, path: 'http://orders/slow' })
  req.on('error', () => {})
  req.end()
  const { eventually } = await import('../helpers/daemon.js')
  await eventually(async () => slow.arrived === 1 || undefined, 5_000, 'the slow request at the app')
  req.destroy()
  await eventually(async () => slow.cancelled === 1 || undefined, 5_000, 'the app\'s request cancelled')
})

test('an outbound proxy bound beyond loopback is warned about: whoever reaches it calls services as this service', async (t) => {
  const log = capturingLogger()
  const s = await startSidecar({ mesh: { service: 'web', config: [], logger: log }, app: { host: '127.0.0.1', port: 9 }, inbound: { host: '127.0.0.1', port: 0 }, outbound: { host: '0.0.0.0', port: 0 } })
  t.after(() => s.close())
  assert.ok(log.lines.some((l) => /^warn sidecar: the outbound proxy listens on 0\.0\.0\.0:\d+, reachable from other machines; anyone who reaches it calls services as web/.test(l)), log.lines.join('\n'))
  const quiet = capturingLogger()
  const local = await startSidecar({ mesh: { service: 'web', config: [], logger: quiet }, app: { host: '127.0.0.1', port: 9 }, inbound: { host: '127.0.0.1', port: 0 }, outbound: { host: '127.0.0.1', port: 0 } })
  t.after(() => local.close())
  assert.ok(!quiet.lines.some((l) => l.includes('reachable from other machines')))
})

test('route templates label the sidecar\'s inbound metrics (/orders/:id, /static/*), first match wins; an unmatched path counts under "", never its raw path', async (t) => {
  const { routeTemplates } = await import('../../src/sidecar/route-templates.js')
  const route = routeTemplates(['/orders/:id', '/orders/:id/items/:item', '/static/*', '/'])
  assert.deepEqual(['/orders/7', '/orders/7?x=1', '/orders/7/items/3', '/static/css/a.css', '/static', '/', '/orders', '/other/9'].map(route), ['/orders/:id', '/orders/:id', '/orders/:id/items/:item', '/static/*', '/static/*', '/', '', ''])
  assert.throws(() => routeTemplates(['orders/:id']), /invalid option routes\[0\]: "orders\/:id" must start with \//)
  assert.throws(() => routeTemplates(['/a/*/b']), /segment "\*" is not a path segment, a :name or a final \*/)

  const app = await recordingApp(t)
  const orders = await startSidecar({ mesh: { service: 'orders', config: [], logger: capturingLogger() }, app: { host: '127.0.0.1', port: app.port }, inbound: { host: '127.0.0.1', port: 0 }, outbound: false, routes: ['/orders/:id', '/static/*'] })
  t.after(() => orders.close())
  for (const p of ['/orders/1', '/orders/2', '/static/app.js', '/users/3']) await (await request(`http://127.0.0.1:${orders.inbound.port}${p}`)).body.text()
  const m = await orders.mesh.metrics()
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { http_route: '/orders/:id' }), 2)
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { http_route: '/static/*' }), 1)
  assert.equal(metricValue(m, 'http_server_request_duration_seconds_count', { http_route: '' }), 1)
  assert.ok(!m.includes('/users/3') && !m.includes('/orders/1'), 'no raw path in the metrics')
})

test('a request with Expect: 100-continue (curl sends it with any body over 1 KB) gets its 100 from the sidecar and reaches the app whole', async (t) => {
  const { app, web } = await pair(t)
  const body = 'x'.repeat(64 * 1024)
  const r = await new Promise<{ status: number; body: string; continued: boolean }>((resolve, reject) => {
    let continued = false
    const req = http.request({ host: '127.0.0.1', port: web.outbound!.port, method: 'POST', path: 'http://orders/upload', headers: { host: 'orders', expect: '100-continue', 'content-length': String(body.length) } })
    req.on('continue', () => {
      continued = true
      req.end(body)
    })
    req.on('response', (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (d: string) => (text += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body: text, continued }))
    })
    req.on('error', reject)
    req.flushHeaders()
  })
  assert.equal(r.continued, true, 'the sidecar answered 100 Continue')
  assert.equal(r.status, 200, r.body)
  assert.equal((JSON.parse(r.body) as { body: string }).body.length, body.length)
  assert.equal(app.seen[0]!.headers.expect, undefined)
})

test('closing a sidecar with the app\'s WebSocket open through its outbound proxy does not hang: the connection is ended', async (t) => {
  const { web } = await pair(t)
  const ws = new WebSocket(`ws://127.0.0.1:${web.outbound!.port}/chat`, { headers: { host: 'orders' } })
  t.after(() => ws.terminate())
  await new Promise<void>((resolve, reject) => {
    ws.on('open', () => resolve())
    ws.on('error', reject)
  })
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  await web.close()
  assert.equal(await closed, 1006, 'cut, not closed by a close frame')
})
