// A WebSocket between meshed services under a daemon rides the same mTLS as any call (identity
// issue): the client mesh opens the endpoint's TLS connection with its SVID, the server's TLS front
// door verifies it, and AuthorizationPolicy decides on the caller's SPIFFE ID before the app's
// upgrade listener runs. Real daemon, node:http + `ws` server, undici's WebSocket, all on loopback.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { WebSocket as UndiciWebSocket } from 'undici'
import { WebSocketServer } from 'ws'
import { startTestDaemon, applyPolicy } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'

function echo(url: string, dispatcher: unknown): Promise<string> {
  return new Promise((resolve, reject) => {
    const ws = new UndiciWebSocket(url, { dispatcher } as ConstructorParameters<typeof UndiciWebSocket>[1])
    ws.onopen = () => ws.send('hi')
    ws.onmessage = (ev) => {
      resolve(String(ev.data))
      ws.close()
    }
    ws.onerror = () => reject(new Error(`${url}: the WebSocket failed before a message came back`))
  })
}

test('a WebSocket between meshed services is mTLS: the server sees the caller\'s SPIFFE identity, and an ALLOW policy that does not name the caller refuses the handshake', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const chat = await controlMesh(d, 'chat')
  t.after(() => chat.close())
  const seen: { encrypted: boolean }[] = []
  const server = http.createServer((_req, res) => res.end('plain'))
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    seen.push({ encrypted: Boolean((req.socket as { encrypted?: boolean }).encrypted) })
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (m) => ws.send(`chat:${String(m)}`)))
  })
  t.after(() => wss.close())
  await chat.listen(server, { port: 0, host: '127.0.0.1' })
  const web = await controlMesh(d, 'web')
  t.after(() => web.close())
  await waitEndpoints(web, 'chat', 1)

  assert.equal(await echo('ws://chat/rooms/1', web.dispatcher), 'chat:hi')
  assert.deepEqual(seen, [{ encrypted: true }])
  assert.equal(metricValue(await chat.metrics(), 'http_server_request_duration_seconds_count', { source_service: 'web', status_code: '101' }), 1)

  const applied = await applyPolicy(d, 'apiVersion: weft/v1\nkind: AuthorizationPolicy\nmetadata: { name: chat-only-checkout }\nspec:\n  service: chat\n  action: ALLOW\n  rules:\n    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }]\n')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const deadline = Date.now() + 5_000
  while (metricValue(await chat.metrics(), 'weft_authz_denied_total', { policy: 'chat-only-checkout' }) === 0 && Date.now() < deadline) {
    await echo('ws://chat/rooms/2', web.dispatcher).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 100))
  }
  await assert.rejects(echo('ws://chat/rooms/3', web.dispatcher), /failed before a message/)
  assert.ok(metricValue(await chat.metrics(), 'weft_authz_denied_total', { policy: 'chat-only-checkout' }) >= 2)
  assert.ok(metricValue(await web.metrics(), 'http_client_request_duration_seconds_count', { destination_service: 'chat', status_code: '403' }) >= 2)
})
