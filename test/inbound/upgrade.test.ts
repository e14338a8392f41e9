// Upgrade (WebSocket) requests on a server mesh.listen serves run through the inbound stack like
// any request (src/http/upgrade.ts): node hands them to 'upgrade' listeners, not 'request' ones,
// so without the gate a DENY on /admin would not hold for `Connection: Upgrade`. Real node:http
// server with an upgrade listener that completes a WebSocket handshake; real clients on loopback.
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import http from 'node:http'
import type { Duplex } from 'node:stream'
import { test } from 'node:test'
import { currentContext } from '../../src/index.js'
import { metricValue, quietMesh } from '../helpers/mesh.js'

const DENY_ADMIN = { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-admin' }, spec: { service: 'chat', action: 'DENY', rules: [{ to: [{ paths: ['/admin', '/admin/*'] }] }] } }

/** An upgrade listener that accepts the WebSocket handshake (RFC 6455 §4.2.2) and notes who it saw. */
function acceptWebSocket(seen: { url: string; traceId: string | undefined }[]) {
  return (req: http.IncomingMessage, socket: Duplex) => {
    seen.push({ url: req.url ?? '', traceId: currentContext()?.traceId })
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`)
    socket.end()
  }
}

/** Sends an upgrade request; resolves with 101 (upgraded) or the status and body of a refusal. */
function upgrade(port: number, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })
    req.on('upgrade', (res, socket) => {
      socket.destroy()
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers })
    })
    req.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('error', reject)
    req.end()
  })
}

test('an upgrade request runs the inbound stack: allowed ones reach the app\'s upgrade listener in the request context; a DENY holds for them (403 from the error table), counted and measured', async (t) => {
  const mesh = await quietMesh([DENY_ADMIN], { service: 'chat' })
  t.after(() => mesh.close())
  const seen: { url: string; traceId: string | undefined }[] = []
  const server = http.createServer((_req, res) => res.end('plain'))
  server.on('upgrade', acceptWebSocket(seen))
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })

  const ok = await upgrade(port, '/rooms/1')
  assert.equal(ok.status, 101)
  assert.equal(ok.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  assert.deepEqual(seen, [{ url: '/rooms/1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }])

  for (const path of ['/admin', '//admin/x', '/%61dmin']) {
    const denied = await upgrade(port, path)
    assert.equal(denied.status, 403, path)
    assert.equal(denied.headers['weft-error-code'], 'WEFT_ERR_FORBIDDEN')
    assert.equal((JSON.parse(denied.body) as { error: { code: string } }).error.code, 'WEFT_ERR_FORBIDDEN')
  }
  assert.equal(seen.length, 1, 'the app never saw a denied upgrade')
  const text = await mesh.metrics()
  assert.equal(metricValue(text, 'weft_authz_denied_total', { policy: 'deny-admin' }), 3)
  assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { status_code: '101' }), 1)
  assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { status_code: '403' }), 3)
})

test('an upgrade listener added after mesh.listen (a WebSocket server made later) is behind the stack too; plain requests are unchanged', async (t) => {
  const mesh = await quietMesh([DENY_ADMIN], { service: 'chat' })
  t.after(() => mesh.close())
  const server = http.createServer((_req, res) => res.end('plain'))
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  const seen: { url: string; traceId: string | undefined }[] = []
  server.on('upgrade', acceptWebSocket(seen))
  assert.equal((await upgrade(port, '/admin')).status, 403)
  assert.equal((await upgrade(port, '/rooms/2')).status, 101)
  assert.deepEqual(seen.map((s) => s.url), ['/rooms/2'])
  const plain = await fetch(`http://127.0.0.1:${port}/rooms`)
  assert.equal(await plain.text(), 'plain')
})

/**
 * What express-ws and @fastify/websocket do with an upgrade: hand it back to the framework's
 * router with a ServerResponse on the socket, so a route handler takes it.
 */
function routeUpgradesInto(server: http.Server, handle: (req: http.IncomingMessage, res: http.ServerResponse) => void): void {
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    const res = new http.ServerResponse(req)
    res.assignSocket(socket as import('node:net').Socket)
    // The test's "WebSocket" ends after the handshake (an open one would keep the server from closing).
    res.on('finish', () => socket.end())
    handle(req, res)
  })
}

/**
 * An allowed upgrade reaches the framework's route once, in the caller's trace; a denied one never
 * does; each is measured once (a second pass through the adapter would count it twice).
 */
async function assertEachUpgradeRunsOnce(mesh: { metrics(): Promise<string> }, server: http.Server, seen: (string | undefined)[]): Promise<void> {
  const port = (server.address() as import('node:net').AddressInfo).port
  assert.equal((await upgrade(port, '/rooms/3')).status, 101)
  assert.equal((await upgrade(port, '/admin')).status, 403)
  assert.deepEqual(seen, ['4bf92f3577b34da6a3ce929d0e0e4736'])
  assert.equal(metricValue(await mesh.metrics(), 'http_server_request_duration_seconds_count'), 2, 'one measurement per upgrade, not two')
}

/** An Express 5 app with `app.use(weft(mesh))` for a `chat` mesh with DENY_ADMIN, closed after the test. */
async function meshedExpress(t: { after(fn: () => unknown): void }) {
  const { default: express } = await import('express')
  const { weft } = await import('../../adapters/express/index.js')
  const mesh = await quietMesh([DENY_ADMIN], { service: 'chat' })
  t.after(() => mesh.close())
  const app = express()
  app.use(weft(mesh))
  return { mesh, app }
}

test('Express behind mesh.secure: an admitted upgrade routed back into the app (as express-ws does) runs the stack once, in its context; a denied one never reaches the app', async (t) => {
  const { mesh, app } = await meshedExpress(t)
  const seen: (string | undefined)[] = []
  app.get('/*path', (req, res) => {
    seen.push(currentContext()?.traceId)
    // A 101 as a WebSocket route would answer: the test's client only needs the upgrade.
    res.writeHead(101, { connection: 'Upgrade', upgrade: 'websocket' })
    res.end()
  })
  const server = http.createServer(app)
  routeUpgradesInto(server, app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  mesh.secure(server)
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  await assertEachUpgradeRunsOnce(mesh, server, seen)
})

/** An Express 5 app with `weft(mesh)` (DENY_ADMIN) on `app.listen`, never given to mesh.secure; all closed after the test. */
async function expressWithoutSecure(t: { after(fn: () => unknown): void }) {
  const { mesh, app } = await meshedExpress(t)
  app.get('/*path', (_req, res) => void res.send('plain'))
  const server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  t.after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  return { mesh, server, port: (server.address() as import('node:net').AddressInfo).port }
}

test('Express without mesh.secure (app.listen): from the server\'s first request on, its upgrades go through the stack (a DENY holds); before it they did not, and a warning says to call mesh.secure', async (t) => {
  const { mesh, server, port } = await expressWithoutSecure(t)
  const seen: { url: string; traceId: string | undefined }[] = []
  server.on('upgrade', acceptWebSocket(seen))
  // The limit, shown: Express gives the middleware no server before a request reaches it.
  assert.equal((await upgrade(port, '/admin')).status, 101, 'before any request the mesh has not seen this server')
  assert.equal(mesh.log.lines.filter((l) => l.includes('mesh.secure')).length, 0)
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/rooms`)).text(), 'plain')
  assert.equal(mesh.log.lines.filter((l) => l.startsWith('warn weft/express: this server was not given to mesh.listen or mesh.secure')).length, 1)
  assert.equal((await upgrade(port, '/admin')).status, 403)
  assert.equal((await upgrade(port, '/rooms/1')).status, 101)
  assert.deepEqual(seen.map((s) => [s.url, s.traceId]), [['/admin', undefined], ['/rooms/1', '4bf92f3577b34da6a3ce929d0e0e4736']])
  // Later requests neither gate again nor warn again.
  await (await fetch(`http://127.0.0.1:${port}/rooms`)).text()
  assert.equal(mesh.log.lines.filter((l) => l.includes('mesh.secure')).length, 1)
})

test('Express without mesh.secure and with no upgrade listener yet: gated quietly at its first request, so a WebSocket server added later is covered', async (t) => {
  const { mesh, server, port } = await expressWithoutSecure(t)
  // With no 'upgrade' listener Node hands an upgrade request to the app as a plain one: the middleware runs.
  const early = await upgrade(port, '/admin')
  assert.equal(early.status, 403)
  assert.equal(mesh.log.lines.filter((l) => l.includes('mesh.secure')).length, 0, 'nothing went past the mesh: no warning')
  const seen: { url: string; traceId: string | undefined }[] = []
  server.on('upgrade', acceptWebSocket(seen))
  assert.equal((await upgrade(port, '/admin')).status, 403)
  assert.equal((await upgrade(port, '/rooms/1')).status, 101)
  assert.deepEqual(seen.map((s) => s.url), ['/rooms/1'])
})

test('Fastify with weftPlugin: an admitted upgrade routed into fastify.routing (as @fastify/websocket does) runs the stack once; a denied one never reaches the route', async (t) => {
  const { default: Fastify } = await import('fastify')
  const { weftPlugin } = await import('../../adapters/fastify/index.js')
  const mesh = await quietMesh([DENY_ADMIN], { service: 'chat' })
  t.after(() => mesh.close())
  const fastify = Fastify()
  await fastify.register(weftPlugin, { mesh })
  const seen: (string | undefined)[] = []
  fastify.get('/*', (request, reply) => {
    seen.push(request.weft?.traceId)
    reply.raw.writeHead(101, { connection: 'Upgrade', upgrade: 'websocket' })
    reply.raw.end()
    return reply.hijack()
  })
  await fastify.ready()
  routeUpgradesInto(fastify.server, (req, res) => fastify.routing(req, res))
  await fastify.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => fastify.close())
  await assertEachUpgradeRunsOnce(mesh, fastify.server, seen)
})

test('an upgrade request with more than 1000 header fields gets 431 on the socket (RELIABILITY B5), and the app never sees it', async (t) => {
  const mesh = await quietMesh([], { service: 'chat' })
  t.after(() => mesh.close())
  const seen: { url: string; traceId: string | undefined }[] = []
  const server = http.createServer((_req, res) => res.end('plain'))
  server.on('upgrade', acceptWebSocket(seen))
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  const { connect } = await import('node:net')
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
  const closed = new Promise((resolve) => socket.on('close', resolve))
  const many = Array.from({ length: 1001 }, (_, i) => `x-h${i}: v\r\n`).join('')
  socket.write(`GET /rooms/1 HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n${many}\r\n`)
  await closed
  assert.match(answer, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  assert.match(answer, /more than 1000 request header fields\n$/)
  assert.deepEqual(seen, [])
})
