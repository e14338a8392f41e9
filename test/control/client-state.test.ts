// test: serial (short leases and in-flight registrations raced on purpose; scripts/run-tests.mjs runs it alone)
// The instance side's bookkeeping against a real daemon: the serving address sent when mesh.listen
// runs during an in-flight registration; endpoint changes applied after a NACK (on the last good
// policy); a stream resumed from the last APPLIED version (a NACKed instance stays NACKED after it
// registers again, a resumed one says what it runs); and an ACK that failed sent again.
import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { ControlClient, type ControlView } from '../../src/control/client.js'
import { silentLogger } from '../../src/util/logger.js'
import { applyPolicy, call, eventually, register, SERVICE_YAML, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

/** A proxy to the daemon whose `hook` may hold or answer a request itself (true: handled). */
async function proxy(t: TestDaemon, hook: (req: IncomingMessage, res: ServerResponse, forward: () => void) => boolean): Promise<{ url: string; server: Server }> {
  const target = new URL(t.url)
  const server = createServer((req, res) => {
    const forward = () => req.pipe(httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode!, up.headers)
      up.pipe(res)
    }))
    if (!hook(req, res, forward)) forward()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

const status = async (t: TestDaemon, id: string) =>
  ((await call(t.url, 'GET', '/v1/status', t.adminToken)).body.instances as { id: string; state: string; ackedVersion?: number; sentVersion?: number; nack?: { version: number } }[]).find((i) => i.id === id)

test('mesh.listen while the first registration is in flight: the address is sent once it resolves', async () => {
  const t = await startTestDaemon()
  const p = await proxy(t, (req, _res, forward) => {
    if (req.url !== '/v1/register') return false
    setTimeout(forward, 300) // a slow or just-restarted daemon
    return true
  })
  const client = new ControlClient({ urls: [p.url], token: t.joinToken, logger: silentLogger, registration: { id: 'payments-1', service: 'payments' }, apply: async () => undefined })
  client.start()
  try {
    await new Promise((r) => setTimeout(r, 100))
    await client.setServing({ address: '127.0.0.1', port: 8081, protocol: 'http' })
    assert.ok(await client.waitForFirstView(3000))
    const eps = await eventually(async () => (await call(t.url, 'GET', '/v1/endpoints', t.adminToken)).body.endpoints['default/payments'], 2000, 'the serving address registered')
    assert.deepEqual(eps.map((e: { address: string }) => e.address), ['127.0.0.1:8081'])
  } finally {
    await client.close()
    p.server.closeAllConnections()
    p.server.close()
    await t.daemon.close()
  }
})

test('after a NACK, endpoint changes still reach the instance (on the last good policy); the version stays NACKED until a good policy', async () => {
  const t = await startTestDaemon({ coalesceMs: 5 })
  await applyPolicy(t, SERVICE_YAML)
  const b = await register(t, { service: 'payments', address: '127.0.0.1', port: 8082 })
  const applied: ControlView[] = []
  const client = new ControlClient({
    urls: [t.url], token: t.joinToken, logger: silentLogger,
    registration: { id: 'checkout-1', service: 'checkout' },
    // This instance cannot compile a resource named "payments-v2" (version skew, a local limit…).
    apply: async (v) => (JSON.stringify(v.resources).includes('payments-v2') ? 'Route/payments-v2: unsupported here' : void applied.push(v)),
  })
  client.start()
  const addrs = () => applied.at(-1)!.endpoints['default/payments']?.map((e) => e.address) ?? []
  try {
    assert.ok(await client.waitForFirstView(3000))
    const good = client.version!
    assert.deepEqual(addrs(), ['127.0.0.1:8082'])
    await applyPolicy(t, SERVICE_YAML + '---\napiVersion: weft/v1\nkind: Route\nmetadata: { name: payments-v2 }\nspec:\n  service: payments\n  rules:\n    - backends: [{ subset: { version: v1 }, weight: 100 }]\n')
    await eventually(async () => (await status(t, 'checkout-1'))?.state === 'NACKED', 3000, 'NACKED')
    // payments instance b leaves, c arrives.
    await call(t.url, 'DELETE', `/v1/instances/${b.id}`, b.token)
    await register(t, { service: 'payments', address: '127.0.0.1', port: 8083 })
    await eventually(async () => addrs().join() === '127.0.0.1:8083', 3000, `the new endpoints applied (has ${addrs().join()})`)
    assert.ok(!JSON.stringify(applied.at(-1)!.resources).includes('payments-v2'), 'on the last good policy')
    assert.equal(client.version, good, 'the version applied whole is still the last good one')
    const st = await status(t, 'checkout-1')
    assert.equal(st?.state, 'NACKED', 'its policy is still not what runs')
    // A policy it can take again: ACKed, SYNCED.
    assert.equal((await call(t.url, 'DELETE', '/v1/policy/Route/payments-v2', t.adminToken)).status, 200)
    await eventually(async () => (await status(t, 'checkout-1'))?.state === 'SYNCED', 3000, 'SYNCED')
  } finally {
    await client.close()
    await t.daemon.close()
  }
})

test('a NACKed instance that registers again is still NACKED (it resumes from what it applied, not from the NACKed version)', async () => {
  const t = await startTestDaemon()
  await applyPolicy(t, SERVICE_YAML)
  const client = new ControlClient({
    urls: [t.url], token: t.joinToken, logger: silentLogger,
    registration: { id: 'checkout-1', service: 'checkout' },
    apply: async () => 'Service/payments: simulated compile error',
    backoff: { baseMs: 20, maxMs: 50 },
  })
  client.start()
  try {
    await eventually(async () => (await status(t, 'checkout-1'))?.state === 'NACKED', 3000, 'NACKED')
    // The registration goes away (here: admin DELETE; the same path as a lease that ran out).
    await call(t.url, 'DELETE', '/v1/instances/checkout-1', t.adminToken)
    await eventually(async () => (await status(t, 'checkout-1'))?.sentVersion !== undefined, 3000, 'registered and watching again')
    await new Promise((r) => setTimeout(r, 300))
    const st = await status(t, 'checkout-1')
    assert.equal(st?.state, 'NACKED')
    assert.equal(st?.ackedVersion, undefined)
  } finally {
    await client.close()
    await t.daemon.close()
  }
})

test('a resumed stream (nothing to send) is SYNCED because the instance ACKs what it runs; a failed ACK is sent again with a heartbeat', async () => {
  const t = await startTestDaemon({ leaseTtlMs: 600 })
  await applyPolicy(t, SERVICE_YAML)
  let failAcks = 1
  const p = await proxy(t, (req, res) => {
    if (!req.url!.endsWith('/ack') || failAcks === 0) return false
    failAcks--
    req.resume()
    res.writeHead(503).end()
    return true
  })
  const client = new ControlClient({ urls: [p.url], token: t.joinToken, logger: silentLogger, registration: { id: 'checkout-1', service: 'checkout' }, apply: async () => undefined, backoff: { baseMs: 20, maxMs: 50 } })
  client.start()
  try {
    assert.ok(await client.waitForFirstView(3000))
    // The first ACK was lost: the next ping's answer carries it.
    const synced = await eventually(async () => { const s = await status(t, 'checkout-1'); return s?.state === 'SYNCED' && s }, 3000, 'SYNCED after the ACK was sent again')
    assert.equal(synced.ackedVersion, client.version)
    // Registered again (status forgotten), resumed at the same version: the daemon sends nothing.
    await call(t.url, 'DELETE', '/v1/instances/checkout-1', t.adminToken)
    const again = await eventually(async () => { const s = await status(t, 'checkout-1'); return s?.state === 'SYNCED' && s }, 3000, 'SYNCED after the resume')
    assert.equal(again.ackedVersion, client.version)
  } finally {
    await client.close()
    p.server.closeAllConnections()
    p.server.close()
    await t.daemon.close()
  }
})
