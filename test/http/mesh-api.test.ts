import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { Registry } from 'prom-client'
import { fetch as undiciFetch, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici'
import { createMesh, isWeftError, WeftError, type Mesh } from '../../src/index.js'
import { metricValue, quietMesh, service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

let up: Upstream
let mesh: Mesh

before(async () => {
  up = await startUpstream('p1')
  mesh = await quietMesh([service('payments', { endpoints: [{ address: up.address }] })])
})
after(async () => {
  await mesh.close()
  await up.close()
})

test('mesh.request routes a logical service URL to an endpoint, keeping the logical Host', async () => {
  const res = await mesh.request('http://payments/charge?id=7', { headers: { 'x-a': '1' } })
  assert.equal(res.statusCode, 200)
  assert.equal(await res.body.text(), 'ok from p1')
  const seen = up.seen.at(-1)!
  assert.equal(seen.url, '/charge?id=7')
  assert.equal(seen.headers.host, 'payments')
  assert.equal(seen.headers['x-a'], '1')
  assert.match(String(seen.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
  assert.ok(Number(seen.headers['weft-deadline-ms']) > 14_000, 'the remaining deadline is carried to the next hop')
})

test('the Host the upstream sees is the authority the caller wrote, or the caller\'s own Host', async () => {
  // A plain http://payments call gets "host: payments" from the endpoint pool itself; any other
  // spelling of the service (namespace-qualified, with a port) is sent as written (URL rules
  // lowercase the host).
  for (const [url, host] of [['http://payments.default/a', 'payments.default'], ['http://payments:8080/b', 'payments:8080'], ['http://PAYMENTS/c', 'payments']]) {
    const res = await mesh.request(url!)
    assert.equal(await res.body.text(), 'ok from p1', url)
    assert.equal(up.seen.at(-1)!.headers.host, host, url)
  }
  const res = await mesh.request('http://payments/d', { headers: { Host: 'billing.example' } })
  await res.body.text()
  assert.equal(up.seen.at(-1)!.headers.host, 'billing.example')
})

test('mesh.fetch has WHATWG fetch semantics, bodies included', async () => {
  const res = await mesh.fetch('http://payments/charge', { method: 'POST', body: JSON.stringify({ amount: 5 }), headers: { 'content-type': 'application/json' } })
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('x-served-by'), 'p1')
  assert.equal(await res.text(), 'ok from p1')
  assert.equal(up.seen.at(-1)!.body, '{"amount":5}')
})

test('setGlobalDispatcher(mesh.dispatcher) makes plain fetch go through the mesh', async () => {
  const previous = getGlobalDispatcher()
  setGlobalDispatcher(mesh.dispatcher)
  try {
    const before = up.hits
    const a = await undiciFetch('http://payments/global')
    assert.equal(await a.text(), 'ok from p1')
    // Node's own fetch (its bundled undici) reads the same global dispatcher.
    const b = await globalThis.fetch('http://payments/global-node')
    assert.equal(await b.text(), 'ok from p1')
    const c = await request('http://payments/global-request')
    assert.equal(await c.body.text(), 'ok from p1')
    assert.equal(up.hits, before + 3)
  } finally {
    setGlobalDispatcher(previous)
  }
})

test('IPs, localhost and unknown hosts pass through untouched', async () => {
  const direct = await mesh.request(`http://127.0.0.1:${up.port}/direct`)
  assert.equal(await direct.body.text(), 'ok from p1')
  assert.equal(up.seen.at(-1)!.headers.traceparent, undefined, 'pass-through adds nothing')
  const local = await mesh.request(`http://localhost:${up.port}/local`)
  assert.equal(local.statusCode, 200)
  await local.body.dump()
  // A name the mesh does not know takes the same branch as localhost (no lookup hit); resolving a
  // made-up name here would send a DNS query off this machine, so only the lookup is checked.
  assert.equal(mesh.snapshot!.lookup('not-a-service'), undefined)
  assert.ok(mesh.snapshot!.lookup('payments') && mesh.snapshot!.lookup('payments.default'))
})

test('metrics() returns Prometheus text with RED histograms labelled from config', async () => {
  await (await mesh.request('http://payments/users/42')).body.dump()
  const text = await mesh.metrics()
  assert.ok(metricValue(text, 'http_client_request_duration_seconds_count', { method: 'GET', status_code: '200', route: 'default', source_service: 'checkout', destination_service: 'payments' }) >= 1)
  assert.ok(!text.includes('/users/42'), 'raw paths never become label values')
  assert.equal(metricValue(text, 'weft_config_version'), 1)
  assert.match(text, /# TYPE weft_circuit_state gauge/)
})

test('two meshes in one process never collide; an injected registry is used', async () => {
  const registry = new Registry()
  const a = await createMesh({ service: 'a', registry, logger: { info() {}, warn() {}, error() {} } })
  const b = await createMesh({ service: 'b', logger: { info() {}, warn() {}, error() {} } })
  try {
    assert.match(await registry.metrics(), /weft_config_version\{source_service="a"\} 1/)
    assert.match(await b.metrics(), /weft_config_version\{source_service="b"\} 1/)
  } finally {
    await a.close()
    await b.close()
  }
})

test('invalid options throw WEFT_ERR_INVALID_ARG naming the option', async () => {
  const cases: [unknown, RegExp][] = [
    [undefined, /options/],
    [{}, /option service/],
    [{ service: 'Checkout!' }, /option service/],
    [{ service: 'a', namespce: 'x' }, /option namespce: unknown option/],
    [{ service: 'a', registry: {} }, /option registry/],
    [{ service: 'a', locality: { zone: 3 } }, /option locality\.zone/],
    [{ service: 'a', dnsServers: ['dns.example'] }, /option dnsServers/],
    [{ service: 'a', config: 42 }, /option config/],
    [{ service: 'a', control: 'http://127.0.0.1:1', failOnDataErrors: 'yes' }, /option failOnDataErrors: must be true or false/],
    [{ service: 'a', failOnDataErrors: true }, /option failOnDataErrors: applies in control mode only/],
  ]
  for (const [opts, re] of cases) {
    await assert.rejects(createMesh(opts as never), (e: unknown) => e instanceof WeftError && e.code === 'WEFT_ERR_INVALID_ARG' && re.test(e.message), String(re))
  }
})

test('an invalid first config rejects createMesh with WEFT_ERR_POLICY_INVALID', async () => {
  await assert.rejects(createMesh({ service: 'a', config: [service('p', { timeout: 'soon' })] }),
    (e: unknown) => isWeftError(e, 'WEFT_ERR_POLICY_INVALID') && /Service\/p spec\.timeout/.test(e.message))
})

test('after close() mesh calls fail with WEFT_ERR_CLOSED', async () => {
  const m = await quietMesh([service('payments', { endpoints: [{ address: up.address }] })])
  await m.close()
  await assert.rejects(m.request('http://payments/x'), (e: unknown) => isWeftError(e, 'WEFT_ERR_CLOSED'))
})

test('a mesh failure through fetch rejects with TypeError whose cause is the WeftError', async () => {
  const m = await quietMesh([service('ghost', { endpoints: [] })])
  try {
    const err = await m.fetch('http://ghost/x').catch((e: unknown) => e)
    assert.ok(err instanceof TypeError)
    const cause = (err as TypeError).cause
    assert.ok(isWeftError(cause, 'WEFT_ERR_NO_ENDPOINTS'), String(cause))
    assert.match(cause.message, /ghost: no endpoint to send to: the service has no endpoints/)
    assert.equal(cause.details.service, 'ghost')
  } finally {
    await m.close()
  }
})
