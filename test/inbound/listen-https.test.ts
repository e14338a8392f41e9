// mesh.listen with a node:https server: the same inbound stack (request context, deadline refusal,
// route-template metrics, health paths) over TLS. The certificate is a committed self-signed
// fixture for localhost/127.0.0.1 (test/fixtures/localhost-*.pem, valid for 100 years), made with
// openssl once; the mesh's own SVIDs come with the identity issue.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import https from 'node:https'
import { test } from 'node:test'
import { Agent, request } from 'undici'
import { currentContext } from '../../src/index.js'
import { metricValue, quietMesh } from '../helpers/mesh.js'

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/${name}`, import.meta.url))

test('mesh.listen serves a node:https server through the inbound stack', async () => {
  const cert = fixture('localhost-cert.pem')
  const mesh = await quietMesh([], { service: 'ledger', inbound: { shedding: false } })
  let handled = 0
  const server = https.createServer({ key: fixture('localhost-key.pem'), cert }, (_req, res) => {
    handled++
    res.end(JSON.stringify({ left: Math.round(currentContext()!.remainingMs()) }))
  })
  const agent = new Agent({ connect: { ca: cert } })
  try {
    const { port } = await mesh.listen(server, { port: 0, host: '127.0.0.1', route: () => '/entries/:id' })
    const url = (path: string): string => `https://127.0.0.1:${port}${path}`
    const ok = await request(url('/entries/1'), { dispatcher: agent, headers: { 'weft-deadline-ms': '2000', 'weft-caller': 'checkout' } })
    assert.equal(ok.statusCode, 200)
    const body = (await ok.body.json()) as { left: number }
    assert.ok(body.left > 0 && body.left <= 2000, `the handler ran in the request context over TLS (${body.left} ms left)`)
    assert.match(String(ok.headers['weft-load']), /^\d\.\d{2}$/)

    const late = await request(url('/entries/2'), { dispatcher: agent, headers: { 'weft-deadline-ms': '0' } })
    assert.equal(late.statusCode, 504)
    assert.equal(((await late.body.json()) as { error: { code: string } }).error.code, 'WEFT_ERR_DEADLINE_EXCEEDED')
    assert.equal(handled, 1, 'the expired request never reached the handler')

    const ready = await request(url('/readyz'), { dispatcher: agent })
    assert.equal(ready.statusCode, 200)
    await ready.body.text()
    const text = await mesh.metrics()
    assert.equal(metricValue(text, 'http_server_request_duration_seconds_count', { http_route: '/entries/:id', source_service: 'checkout', status_code: '200' }), 1)
  } finally {
    await mesh.close()
    await agent.close()
  }
})
