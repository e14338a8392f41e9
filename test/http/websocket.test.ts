// WebSocket (and other `upgrade` requests) to a mesh service: undici's WebSocket, fetch's upgrade
// and `dispatcher.upgrade()` with mesh.dispatcher go through the client stack like any request —
// routed by the Route, balanced, retried on a connect failure, carrying trace context and the caller
// chain, measured (the handshake, status 101) — and the socket is then the caller's. Real parts:
// node:http servers behind mesh.listen with a `ws` WebSocketServer, undici's WebSocket client,
// everything on 127.0.0.1.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { upgrade, WebSocket as UndiciWebSocket } from 'undici'
import { WebSocketServer } from 'ws'
import { currentContext } from '../../src/index.js'
import { metricValue, quietMesh, route, service } from '../helpers/mesh.js'

interface Seen {
  server: string
  url: string
  caller: string | undefined
  traceId: string | undefined
}

/** A node:http server whose WebSocketServer echoes each message as "<name>:<message>". */
function echoServer(name: string, seen: Seen[]): http.Server {
  const server = http.createServer((_req, res) => res.end('plain'))
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    seen.push({ server: name, url: req.url ?? '', caller: req.headers['weft-caller'] as string | undefined, traceId: currentContext()?.traceId })
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`${name}:${String(m)}`)))
  })
  server.on('close', () => wss.close())
  return server
}

/** Opens a WebSocket through `dispatcher`, sends `text`, resolves with the first message back. */
function echo(url: string, dispatcher: unknown, text = 'hi'): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new UndiciWebSocket(url, { dispatcher } as ConstructorParameters<typeof UndiciWebSocket>[1])
    ws.onopen = () => ws.send(text)
    ws.onmessage = (ev) => {
      resolve(String(ev.data))
      ws.close()
    }
    ws.onerror = () => reject(new Error(`${url}: the WebSocket failed before a message came back`))
  })
}

/** A port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = http.createServer()
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  const { port } = s.address() as AddressInfo
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

async function startChat(t: { after(fn: () => unknown): void }, seen: Seen[]) {
  const server = await quietMesh([{ apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-admin' }, spec: { service: 'chat', action: 'DENY', rules: [{ to: [{ paths: ['/admin', '/admin/*'] }] }] } }], { service: 'chat' })
  t.after(() => server.close())
  const v1 = await server.listen(echoServer('v1', seen), { port: 0, host: '127.0.0.1' })
  const v2 = await server.listen(echoServer('v2', seen), { port: 0, host: '127.0.0.1' })
  return { server, v1: v1.port, v2: v2.port }
}

test('a WebSocket to ws://<service>/… goes through the mesh: routed by subset, with trace context and caller; the handshake is measured (101); a mirror does not copy it', async (t) => {
  const seen: Seen[] = []
  const chat = await startChat(t, seen)
  const client = await quietMesh([
    service('chat', { endpoints: [{ address: `127.0.0.1:${chat.v1}`, labels: { version: 'v1' } }, { address: `127.0.0.1:${chat.v2}`, labels: { version: 'v2' } }] }),
    route('chat', {
      service: 'chat',
      rules: [
        { name: 'beta', matches: [{ path: { prefix: '/beta' } }], backends: [{ subset: { version: 'v2' } }] },
        { name: 'stable', backends: [{ subset: { version: 'v1' } }], mirror: { subset: { version: 'v2' } } },
      ],
    }),
  ], { service: 'web' })
  t.after(() => client.close())

  assert.equal(await echo('ws://chat/rooms/1', client.dispatcher, 'hello'), 'v1:hello')
  assert.equal(await echo('ws://chat/beta/rooms/1', client.dispatcher, 'hello'), 'v2:hello')
  assert.deepEqual(seen.map((s) => [s.server, s.url, s.caller]), [['v1', '/rooms/1', 'web'], ['v2', '/beta/rooms/1', 'web']], 'one handshake per socket, no mirrored copy')
  assert.match(seen[0]!.traceId ?? '', /^[0-9a-f]{32}$/, 'the server ran the handshake in a context with the client call\'s trace')
  assert.notEqual(seen[0]!.traceId, seen[1]!.traceId)

  const text = await client.metrics()
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { destination_service: 'chat', status_code: '101', route: 'stable' }), 1)
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { destination_service: 'chat', status_code: '101', route: 'beta' }), 1)
  assert.equal(metricValue(text, 'weft_mirror_requests_total', { result: 'skipped_upgrade' }), 1)
  assert.equal(metricValue(text, 'weft_mirror_requests_total', { result: 'sent' }), 0)
})

test('an upgrade to an endpoint that refuses connections is retried on another, as any idempotent request', async (t) => {
  const seen: Seen[] = []
  const chat = await startChat(t, seen)
  const dead = await deadPort()
  const client = await quietMesh([
    service('chat', { endpoints: [{ address: `127.0.0.1:${dead}` }, { address: `127.0.0.1:${chat.v1}` }], loadBalancer: { policy: 'round-robin' } }),
  ], { service: 'web' })
  t.after(() => client.close())
  for (let i = 0; i < 4; i++) assert.equal(await echo(`ws://chat/rooms/${i}`, client.dispatcher), 'v1:hi')
  assert.equal(seen.length, 4)
  const text = await client.metrics()
  assert.ok(metricValue(text, 'weft_retries_total', { destination_service: 'chat' }) >= 1, 'at least one handshake went to the dead endpoint first and was retried')
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { destination_service: 'chat', status_code: '101' }), 4)
})

test('undici\'s upgrade() through mesh.dispatcher returns the upgraded socket; a handshake the server\'s policy denies is a 403, counted, and the app never sees it', async (t) => {
  const seen: Seen[] = []
  const chat = await startChat(t, seen)
  const client = await quietMesh([service('chat', { endpoints: [{ address: `127.0.0.1:${chat.v1}` }] })], { service: 'web' })
  t.after(() => client.close())
  const wsHeaders = { 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' }

  const up = await upgrade('http://chat/rooms/7', { dispatcher: client.dispatcher, protocol: 'websocket', headers: wsHeaders })
  assert.equal(up.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  assert.equal(typeof up.socket.write, 'function')
  up.socket.destroy()

  await assert.rejects(upgrade('http://chat/admin', { dispatcher: client.dispatcher, protocol: 'websocket', headers: wsHeaders }), /bad upgrade/)
  await assert.rejects(echo('ws://chat/admin/x', client.dispatcher), /failed before a message/)
  assert.deepEqual(seen.map((s) => s.url), ['/rooms/7'], 'the denied handshakes never reached the app')
  const text = await client.metrics()
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { destination_service: 'chat', status_code: '403' }), 2)
  assert.equal(metricValue(await chat.server.metrics(), 'weft_authz_denied_total', { policy: 'deny-admin' }), 2)
})

test('CONNECT to a mesh service is refused with WEFT_ERR_INVALID_ARG naming why; hosts the mesh does not know pass through', async (t) => {
  const client = await quietMesh([service('chat', { endpoints: [{ address: '127.0.0.1:9' }] })], { service: 'web' })
  t.after(() => client.close())
  await assert.rejects(client.dispatcher.connect({ origin: 'http://chat', path: 'chat:443' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_ERR_INVALID_ARG')
    assert.match(err.message, /CONNECT chat: a tunnel to a mesh service is not supported/)
    return true
  })
  // An address the mesh does not know: undici's own upgrade, untouched.
  const seen: Seen[] = []
  const plain = echoServer('plain', seen)
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => plain.close(r)))
  const { port } = plain.address() as AddressInfo
  assert.equal(await echo(`ws://127.0.0.1:${port}/direct`, client.dispatcher), 'plain:hi')
})

test('a handshake the service never answers ends at the service timeout with WEFT_ERR_DEADLINE_EXCEEDED, measured', async (t) => {
  const sockets: import('node:net').Socket[] = []
  // Accepts the connection and the upgrade request, never answers.
  const silent = http.createServer()
  silent.on('upgrade', (_req, socket) => {
    sockets.push(socket as import('node:net').Socket)
    socket.on('error', () => {})
  })
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
  t.after(() => new Promise((r) => {
    for (const s of sockets) s.destroy()
    silent.close(r)
  }))
  const client = await quietMesh([service('chat', { endpoints: [{ address: `127.0.0.1:${(silent.address() as AddressInfo).port}` }], timeout: '300ms' })], { service: 'web' })
  t.after(() => client.close())
  await assert.rejects(upgrade('http://chat/rooms/1', { dispatcher: client.dispatcher, protocol: 'websocket', headers: { 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'WEFT_ERR_DEADLINE_EXCEEDED')
    assert.match(err.message, /timeout 300ms of service chat/)
    return true
  })
  assert.equal(sockets.length, 1, 'the handshake reached the endpoint once')
  assert.equal(metricValue(await client.metrics(), 'http_client_request_duration_seconds_count', { destination_service: 'chat', error_code: 'WEFT_ERR_DEADLINE_EXCEEDED' }), 1)
})

/** Opens a WebSocket through `dispatcher` and resolves once it is open (the caller closes it). */
function openSocket(url: string, dispatcher: unknown): Promise<InstanceType<typeof UndiciWebSocket>> {
  return new Promise((resolve, reject) => {
    const ws = new UndiciWebSocket(url, { dispatcher } as ConstructorParameters<typeof UndiciWebSocket>[1])
    ws.onopen = () => resolve(ws)
    ws.onerror = () => reject(new Error(`${url}: the WebSocket failed to open`))
  })
}

test('an open WebSocket counts as a request in flight until it closes: least-request spreads long-lived sessions, and a closed one frees its endpoint', async (t) => {
  const seen: Seen[] = []
  const chat = await startChat(t, seen)
  const client = await quietMesh([service('chat', { endpoints: [{ address: `127.0.0.1:${chat.v1}` }, { address: `127.0.0.1:${chat.v2}` }], loadBalancer: { policy: 'least-request' } })], { service: 'web' })
  t.after(() => client.close())
  const open: InstanceType<typeof UndiciWebSocket>[] = []
  // One after another: each handshake is over before the next pick. Counted only while the
  // handshake lasted, every session would tie at 0 in flight and go to the same endpoint.
  for (let i = 0; i < 6; i++) open.push(await openSocket(`ws://chat/rooms/${i}`, client.dispatcher))
  const count = (name: string) => seen.filter((s) => s.server === name).length
  assert.deepEqual([count('v1'), count('v2')], [3, 3], `sessions per endpoint: ${seen.map((s) => s.server)}`)
  // Two of v1's sessions close: the next two go to v1, which now holds fewer.
  const v1Sessions = open.filter((_, i) => seen[i]!.server === 'v1').slice(0, 2)
  await Promise.all(v1Sessions.map((ws) => new Promise<void>((resolve) => {
    ws.onclose = () => resolve()
    ws.close()
  })))
  const endpoints = client.snapshot!.lookup('chat')!.runtime.endpoints.list()
  await eventuallyTrue(() => endpoints.reduce((n, e) => n + e.pending, 0) === 4)
  for (let i = 6; i < 8; i++) open.push(await openSocket(`ws://chat/rooms/${i}`, client.dispatcher))
  assert.deepEqual([count('v1'), count('v2')], [5, 3])
  // Closed here, before the after-hooks close the server mesh (whose drain would wait for them).
  for (const ws of open) ws.close()
  await eventuallyTrue(() => endpoints.every((e) => e.pending === 0))
})

async function eventuallyTrue(check: () => boolean, ms = 5_000): Promise<void> {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}
