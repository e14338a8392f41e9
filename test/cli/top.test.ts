import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { applyPolicy, call, eventually } from '../helpers/daemon.js'
import { controlMesh, PAYMENTS_NO_RETRIES } from '../helpers/control-kit.js'
import { cli, startCliDaemon } from './kit.js'
import type { TopView } from '../../src/daemon/traffic-board.js'

test('weft top: real meshes report their traffic with each heartbeat; the daemon shows what payments served and what checkout saw calling it', async (t) => {
  // A 1.5 s lease: the daemon pings every 500 ms, and each heartbeat carries the traffic.
  const d = await startCliDaemon({ leaseTtlMs: 1_500 })
  t.after(() => d.close())
  assert.equal((await applyPolicy(d, PAYMENTS_NO_RETRIES)).status, 200)
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === '/fail' ? 500 : 200
    res.end('ok')
  })
  // Route templates for the served-per-route table (what a framework's router gives an adapter).
  await payments.listen(server, { port: 0, host: '127.0.0.1', route: (req) => (req.url === '/fail' ? '/fail' : '/ok') }) as AddressInfo
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())

  // Until checkout's view holds payments' endpoint: each try is a call it counts.
  let probes = 0
  await eventually(async () => {
    probes++
    const r = await checkout.request('http://payments/ok').catch(() => undefined)
    await r?.body.text()
    return r?.statusCode === 200
  }, 10_000, 'checkout reaching payments')
  // 40 answered 200 and 10 answered 500, spread out (5 failures in a row would open the circuit).
  for (let i = 0; i < 50; i++) {
    const fail = i % 5 === 0
    const r = await checkout.request(`http://payments/${fail ? 'fail' : 'ok'}`)
    assert.equal(r.statusCode, fail ? 500 : 200)
    await r.body.text()
  }

  const top = await eventually(async () => {
    const r = await call<TopView>(d.url, 'GET', '/v1/top?window=60', d.adminToken)
    assert.equal(r.status, 200)
    const v = r.body
    const served = v.services.find((s) => s.service === 'payments')
    const calls = v.edges.find((e) => e.from === 'checkout' && e.to === 'payments')
    return served && calls && served.requests >= 50 && calls.requests >= 50 + probes - 1 ? v : undefined
  }, 10_000, 'the traffic in GET /v1/top')
  const served = top.services.find((s) => s.service === 'payments')!
  const calls = top.edges.find((e) => e.from === 'checkout' && e.to === 'payments')!
  assert.equal(top.windowMs, 60_000)
  assert.equal(top.instances, 2)
  // payments served 40 + 10 + the successful probe; checkout saw every probe (the early ones failed
  // in the mesh: no endpoint yet), so its count is at least payments'.
  assert.equal(served.requests, 51)
  assert.equal(served.successRate, 41 / 51)
  assert.deepEqual([served.namespace, served.proto, served.instances], ['default', 'http', 1])
  assert.ok(served.p50Ms !== null && served.p50Ms > 0 && served.p99Ms! >= served.p50Ms)
  assert.ok(calls.requests >= 51 && calls.requests <= 50 + probes, `${calls.requests} calls for ${probes} probes`)
  assert.equal(calls.requests - Math.round(calls.successRate! * calls.requests), 10 + (calls.requests - 51), 'failures: the 10 answered 500 and the probes that found no endpoint')
  assert.ok(served.rps > 0 && calls.rps >= served.rps)

  const once = await cli(['top', '--once', '-w', '60s', ...d.flags])
  assert.equal(once.status, 0, once.stderr)
  assert.match(once.stdout, /^last 60s.*, 2 instances reporting\n/)
  assert.match(once.stdout, /\nserved \(as the services' instances saw it\):\nSERVICE\s+INSTANCES\s+PROTO\s+RPS\s+SUCCESS\s+P50\s+P95\s+P99\npayments\s+1\s+http\s+[\d.]+\s+80\.39%\s+[\d.]+ms/)
  assert.match(once.stdout, /\ncalls \(as the callers saw them, mesh failures included\):\nFROM\s+TO\s+INSTANCES\s+PROTO\s+RPS\s+SUCCESS\s+P50\s+P95\s+P99\ncheckout\s+payments\s+1\s+http\s+/)
  // Per route: /fail answered 500 every time, /ok never.
  assert.deepEqual(top.routes.map((r) => [r.service, r.route, r.requests, r.successRate]), [['payments', '/ok', 41, 1], ['payments', '/fail', 10, 0]])
  const routes = await cli(['top', '--once', '--routes', '-w', '60s', ...d.flags])
  assert.match(routes.stdout, /\nserved per route \(HTTP: the route template the app matched, - for none; gRPC: the method\):\nSERVICE\s+ROUTE\s+INSTANCES\s+PROTO\s+RPS\s+SUCCESS\s+P50\s+P95\s+P99\npayments\s+\/ok\s+1\s+http\s+[\d.]+\s+100\.00%.*\npayments\s+\/fail\s+1\s+http\s+[\d.]+\s+0\.00%/)
  assert.doesNotMatch(once.stdout, /served per route/, 'per route only with --routes')
  const json = JSON.parse((await cli(['top', '-o', 'json', ...d.flags])).stdout) as TopView
  assert.equal(json.windowMs, 30_000)
  assert.ok(json.services.some((s) => s.service === 'payments' && s.requests === 51))

  // The admin credential is needed, and the window is checked at both ends.
  assert.equal((await call(d.url, 'GET', '/v1/top')).status, 401)
  assert.equal((await call(d.url, 'GET', '/v1/top?window=5', d.adminToken)).status, 400)
  const usage = await cli(['top', '-w', '5s', ...d.flags])
  assert.equal(usage.status, 2)
  assert.match(usage.stderr, /--window must be 10s to 60s/)
})
