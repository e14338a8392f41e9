// Anti-rollback (RELIABILITY S8d): an instance refuses a full snapshot older than the version it
// runs (a replayed or rolled-back view) with a NACK, and keeps serving. The daemon here is a
// scripted stand-in on node:http (a real daemon's versions only grow, so it cannot send one): the
// fake control plane the STYLE page allows for protocol tests.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test, type TestContext } from 'node:test'
import type { AddressInfo } from 'node:net'
import { ControlClient, type ControlView } from '../../src/control/client.js'
import { capturingLogger } from '../helpers/mesh.js'

const svc = (timeout: string) => [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout } }]
type Ack = { version: number; error?: string }

/**
 * A daemon that registers one instance, opens its watch with a version-5 snapshot (none when the
 * instance says it holds 5), records ACKs, and lets the test write to the latest stream. A
 * ControlClient on it records what it applies (version and the Service's timeout).
 */
async function scripted(t: TestContext, backoff?: { baseMs: number; maxMs: number }) {
  const acks: Ack[] = []
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
  const applied: { version: number; timeout: string }[] = []
  const client = new ControlClient({
    urls: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`], token: 'wj.x', registration: { id: 'checkout-1', service: 'checkout' }, logger: capturingLogger(),
    ...(backoff ? { backoff } : {}),
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
  /** The ACK (or, with `nack`, the NACK) of version `v`, waiting for it a little. */
  const ackOf = async (v: number, nack = false) => {
    const fits = (a: Ack) => a.version === v && (a.error !== undefined) === nack
    for (let i = 0; i < 100 && !acks.some(fits); i++) await new Promise((r) => setTimeout(r, 20))
    return acks.find(fits)
  }
  const send = (m: object) => streams[streams.length - 1]!.write(JSON.stringify(m) + '\n')
  return { client, applied, streams, watchedWith, ackOf, send }
}

test('a snapshot older than the running version is NACKed, never applied; a newer one is applied', async (t) => {
  const { client, applied, ackOf, send } = await scripted(t)
  assert.deepEqual(await ackOf(5), { version: 5 })
  send({ type: 'snapshot', version: 3, resources: svc('30s'), endpoints: {} })
  const nack = await ackOf(3, true)
  assert.match(nack?.error ?? '', /version 3 is older than version 5, which this instance runs: refused as a replayed or rolled-back view/)
  assert.deepEqual(applied.map((a) => a.version), [5], 'the older view was never applied')
  assert.equal(client.version, 5)
  send({ type: 'snapshot', version: 7, resources: svc('3s'), endpoints: {} })
  assert.deepEqual(await ackOf(7), { version: 7 })
  assert.deepEqual(applied.map((a) => a.version), [5, 7])
})

test('an older number with the very content that runs is taken (two daemons over one store can number one content differently); then deltas build on it', async (t) => {
  const { client, applied, ackOf, send } = await scripted(t)
  assert.deepEqual(await ackOf(5), { version: 5 })
  // The same policy and endpoints as version 5, numbered 4 by another daemon: ACKed, no NACK.
  send({ type: 'snapshot', version: 4, resources: svc('2s'), endpoints: {} })
  assert.deepEqual(await ackOf(4), { version: 4 })
  assert.equal(client.version, 4, 'the instance now holds the daemon\'s number')
  // A delta on it applies.
  send({ type: 'policy', version: 6, base: 4, resources: svc('3s'), endpoints: {} })
  assert.deepEqual(await ackOf(6), { version: 6 })
  assert.deepEqual(applied.map((a) => a.version).slice(-1), [6])
})

test('a refused older snapshot never becomes a delta\'s base: an endpoints or policy delta on it is not applied, nor is the running version with another policy', async (t) => {
  const { client, applied, streams, watchedWith, ackOf, send } = await scripted(t, { baseMs: 10, maxMs: 50 })
  assert.deepEqual(await ackOf(5), { version: 5 })

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
