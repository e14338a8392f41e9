// Drain with WebSockets open (src/inbound/core.ts holdUpgraded): an upgraded connection is not a
// request node's server tracks, so without the mesh holding it, mesh.close() would wait on
// server.close() for as long as the WebSocket lived. Now the drain waits for open WebSockets like
// in-flight requests: the 'draining' event is the application's cue to close them cleanly (1001),
// and past inbound.drainTimeoutMs the mesh destroys what is left. Real node:http + `ws` server,
// undici's WebSocket client, on loopback.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { WebSocket as UndiciWebSocket } from 'undici'
import { WebSocketServer, type WebSocket } from 'ws'
import { quietMesh } from '../helpers/mesh.js'

/** A meshed server whose WebSocketServer keeps every connection open; `sockets` are the server's ends. */
async function chatServer(drainTimeoutMs: number) {
  const mesh = await quietMesh([], { service: 'chat', inbound: { drainTimeoutMs } })
  const server = http.createServer((_req, res) => res.end('plain'))
  const wss = new WebSocketServer({ noServer: true })
  const sockets: WebSocket[] = []
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.push(ws)
    ws.on('message', (m) => ws.send(`echo:${String(m)}`))
  }))
  const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1' })
  return { mesh, wss, sockets, port }
}

/** An open client WebSocket (raw address: the server's side is what is tested) and how it closed. */
async function openClient(port: number): Promise<{ ws: UndiciWebSocket; closed: Promise<{ code: number; reason: string }> }> {
  const ws = new UndiciWebSocket(`ws://127.0.0.1:${port}/rooms/1`)
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (ev) => resolve({ code: ev.code, reason: ev.reason })))
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => ws.send('hi')
    ws.onmessage = () => resolve()
    ws.onerror = () => reject(new Error('the WebSocket did not open'))
  })
  return { ws, closed }
}

test('mesh.close() with a WebSocket open: the \'draining\' event lets the app close it with 1001, and the drain ends as soon as it has closed', async (t) => {
  // A drain timeout far beyond the test's own: close() resolving at all shows the drain ended on the close, not on the timer.
  const chat = await chatServer(600_000)
  t.after(() => chat.wss.close())
  const client = await openClient(chat.port)
  let drainingSeen = 0
  chat.mesh.on('draining', () => {
    drainingSeen++
    for (const ws of chat.sockets) ws.close(1001, 'server going away')
  })
  await chat.mesh.close()
  assert.equal(drainingSeen, 1)
  assert.deepEqual(await client.closed, { code: 1001, reason: 'server going away' })
})

test('mesh.close() with a WebSocket the app leaves open: the drain timeout passes, the connection is destroyed, and close() resolves', async (t) => {
  const chat = await chatServer(200)
  t.after(() => chat.wss.close())
  const client = await openClient(chat.port)
  const second = await openClient(chat.port)
  assert.equal(chat.sockets.length, 2)
  await chat.mesh.close()
  // No close frame came: the connection was cut (1006, abnormal closure).
  assert.equal((await client.closed).code, 1006)
  assert.equal((await second.closed).code, 1006)
})

test('a WebSocket that closes on its own before mesh.close() is not waited for; a refused handshake holds nothing', async (t) => {
  const chat = await chatServer(600_000)
  t.after(() => chat.wss.close())
  const client = await openClient(chat.port)
  client.ws.close(1000, 'done')
  assert.equal((await client.closed).code, 1000)
  // A handshake the ws server refuses (no Sec-WebSocket-Key): it answers 400 and closes the socket.
  const refused = await new Promise<number>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: chat.port, path: '/x', headers: { connection: 'Upgrade', upgrade: 'websocket' } })
    req.on('response', (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('upgrade', () => reject(new Error('upgraded without a key')))
    req.on('error', reject)
    req.end()
  })
  assert.equal(refused, 400)
  // With the 600 s drain timeout, close() resolves only if nothing is held.
  await chat.mesh.close()
})
