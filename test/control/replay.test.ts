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

test('a refused older snapshot never becomes a delta\'s base: an endpoints or policy delta on it is not applied, nor is the running version with another policy', async (t) => {
  const acks: { version: number; error?: string }[] = []
  const streams: http.ServerResponse[] = []
  const watchedWith: string[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (c) => (body += c))
    req.on('end', () => {
      if (req.url === '/v1/register') return res.end(JSON.stringify({ id: 'checkout-1', token: 'wi.x', leaseTtlMs: 60_000 }))
      if (req.url?.startsWith('/v1/instances/checkout-1/watch')) {
        const since = new URL(req.url, 'http://x').searchParams.get('version') ?? ''
        watchedWith.push(since)
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        if (since !== '5') res.write(JSON.stringify({ type: 'snapshot', version: 5, resources: svc('2s'), endpoints: {} }) + '\n')
        streams.push(res)
        return
      }
      if (req.url === '/v1/instances/checkout-1/ack') acks.push(JSON.parse(body))
      res.end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const applied: { version: number; timeout: string }[] = []
  const client = new ControlClient({
    urls: [url], token: 'wj.x', registration: { id: 'checkout-1', service: 'checkout' }, logger: capturingLogger(),
    backoff: { baseMs: 10, maxMs: 50 },
    apply: async (v: ControlView) => {
      applied.push({ version: v.version, timeout: (v.resources[0] as { spec: { timeout: string } }).spec.timeout })
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
  const ackOf = async (v: number, nack = false) => {
    const fits = (a: { version: number; error?: string }) => a.version === v && (a.error !== undefined) === nack
    for (let i = 0; i < 100 && !acks.some(fits); i++) await new Promise((r) => setTimeout(r, 20))
    return acks.find(fits)
  }
  assert.deepEqual(await ackOf(5), { version: 5 })
  const send = (m: object) => streams[streams.length - 1]!.write(JSON.stringify(m) + '\n')

  // An older snapshot (a daemon restored from an old backup), then deltas built on it.
  send({ type: 'snapshot', version: 3, resources: svc('30s'), endpoints: {} })
  assert.match((await ackOf(3, true))?.error ?? '', /older than version 5/)
  const streamsBefore = streams.length
  send({ type: 'endpoints', version: 6, base: 3, endpoints: { 'default/payments': [{ address: '127.0.0.1', port: 9, instance: 'p', labels: {}, protocol: 'http' }] } })
  for (let i = 0; i < 100 && streams.length === streamsBefore; i++) await new Promise((r) => setTimeout(r, 20))
  assert.ok(streams.length > streamsBefore, 'a delta on the refused base makes the instance open the stream again')
  assert.equal(watchedWith[watchedWith.length - 1], '5', 'asking from the version it runs')
  send({ type: 'policy', version: 8, base: 3, resources: svc('30s'), endpoints: {} })
  await new Promise((r) => setTimeout(r, 200))
  assert.deepEqual(applied, [{ version: 5, timeout: '2s' }], 'nothing built on the refused view was applied')

  // The running version with another policy.
  send({ type: 'snapshot', version: 5, resources: svc('45s'), endpoints: {} })
  assert.match((await ackOf(5, true))?.error ?? '', /version 5 is the version this instance runs, with another policy: refused/)
  assert.deepEqual(applied, [{ version: 5, timeout: '2s' }])

  // A newer view is applied, and a delta on it too.
  send({ type: 'snapshot', version: 9, resources: svc('3s'), endpoints: {} })
  assert.deepEqual(await ackOf(9), { version: 9 })
  send({ type: 'policy', version: 10, base: 9, resources: svc('4s'), endpoints: {} })
  assert.deepEqual(await ackOf(10), { version: 10 })
  assert.deepEqual(applied.map((a) => a.version), [5, 9, 10])
  assert.equal(client.version, 10)
})
