// Anti-rollback (RELIABILITY S8d): an instance refuses a full snapshot older than the version it
// runs (a replayed or rolled-back view) with a NACK, and keeps serving. The daemon here is a
// scripted stand-in on node:http (a real daemon's versions only grow, so it cannot send one): the
// fake control plane the STYLE page allows for protocol tests.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { ControlClient, type ControlView } from '../../src/control/client.js'
import { capturingLogger } from '../helpers/mesh.js'

const svc = (timeout: string) => [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout } }]

test('a snapshot older than the running version is NACKed, never applied; a newer one is applied', async (t) => {
  const acks: { version: number; error?: string }[] = []
  let stream: http.ServerResponse | undefined
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (req.url === '/v1/register') return res.end(JSON.stringify({ id: 'checkout-1', token: 'wi.x', leaseTtlMs: 60_000 }))
      if (req.url?.startsWith('/v1/instances/checkout-1/watch')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.write(JSON.stringify({ type: 'snapshot', version: 5, resources: svc('2s'), endpoints: {} }) + '\n')
        stream = res
        return
      }
      if (req.url === '/v1/instances/checkout-1/ack') acks.push(JSON.parse(body))
      res.end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const applied: number[] = []
  const client = new ControlClient({
    urls: [url], token: 'wj.x', registration: { id: 'checkout-1', service: 'checkout' }, logger: capturingLogger(),
    apply: async (v: ControlView) => {
      applied.push(v.version)
      return undefined
    },
  })
  t.after(async () => {
    await client.close()
    server.closeAllConnections()
    server.close()
  })
  client.start()
  assert.ok(await client.waitForFirstView(3000))
  const ackOf = async (v: number) => {
    for (let i = 0; i < 100 && !acks.some((a) => a.version === v); i++) await new Promise((r) => setTimeout(r, 20))
    return acks.find((a) => a.version === v)
  }
  assert.deepEqual(await ackOf(5), { version: 5 })
  stream!.write(JSON.stringify({ type: 'snapshot', version: 3, resources: svc('30s'), endpoints: {} }) + '\n')
  const nack = await ackOf(3)
  assert.match(nack?.error ?? '', /version 3 is older than version 5, which this instance runs: refused as a replayed or rolled-back view/)
  assert.deepEqual(applied, [5], 'the older view was never applied')
  assert.equal(client.version, 5)
  stream!.write(JSON.stringify({ type: 'snapshot', version: 7, resources: svc('3s'), endpoints: {} }) + '\n')
  assert.deepEqual(await ackOf(7), { version: 7 })
  assert.deepEqual(applied, [5, 7])
})
