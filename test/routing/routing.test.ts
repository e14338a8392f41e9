import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isWeftError, type Mesh } from '../../src/index.js'
import { quietMesh, route, service } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

let v1a: Upstream, v1b: Upstream, v2: Upstream
let mesh: Mesh

before(async () => {
  v1a = await startUpstream('v1a')
  v1b = await startUpstream('v1b')
  v2 = await startUpstream('v2')
  mesh = await quietMesh([
    service('payments', {
      endpoints: [
        { address: v1a.address, labels: { version: 'v1' } },
        { address: v1b.address, labels: { version: 'v1' } },
        { address: v2.address, labels: { version: 'v2' } },
      ],
    }),
    route('payments-canary', {
      service: 'payments',
      rules: [
        { name: 'canary-header', matches: [{ headers: { 'x-canary': 'true' } }], backends: [{ subset: { version: 'v2' } }] },
        { name: 'admin', matches: [{ path: { prefix: '/admin' }, method: 'DELETE' }], fault: { abort: { percent: 100, httpStatus: 418 } } },
        { name: 'search', matches: [{ path: { regex: '/search/[0-9]+' }, query: { q: { prefix: 'a' } } }], backends: [{ subset: { version: 'v1' } }] },
        { name: 'split', backends: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
      ],
    }),
  ])
})
after(async () => {
  await mesh.close()
  for (const u of [v1a, v1b, v2]) await u.close()
})

const served = async (url: string, init?: Parameters<Mesh['request']>[1]) => {
  const res = await mesh.request(url, init)
  await res.body.dump()
  return { status: res.statusCode, by: String(res.headers['x-served-by'] ?? '') }
}

test('a 90/10 weighted split holds within ±3 % over 5,000 requests', async () => {
  let v2Count = 0
  for (let batch = 0; batch < 100; batch++) {
    const got = await Promise.all(Array.from({ length: 50 }, () => served('http://payments/charge')))
    v2Count += got.filter((g) => g.by === 'v2').length
  }
  const share = v2Count / 5000
  assert.ok(Math.abs(share - 0.1) <= 0.03, `v2 share ${share}`)
})

test('header matches route to a subset; first matching rule wins', async () => {
  for (let i = 0; i < 20; i++) assert.equal((await served('http://payments/charge', { headers: { 'x-canary': 'true' } })).by, 'v2')
  // The canary header wins even on a path another rule matches.
  assert.equal((await served('http://payments/search/12?q=abc', { headers: { 'x-canary': 'true' } })).by, 'v2')
})

test('path regex + query matches', async () => {
  for (let i = 0; i < 20; i++) assert.match((await served('http://payments/search/12?q=abc')).by, /^v1/)
})

test('fault injection aborts with the configured status and a WEFT_ERR_FAULT_INJECTED body', async () => {
  const before = v1a.hits + v1b.hits + v2.hits
  const res = await mesh.request('http://payments/admin/users', { method: 'DELETE' })
  assert.equal(res.statusCode, 418)
  assert.equal(res.headers['weft-error-code'], 'WEFT_ERR_FAULT_INJECTED')
  const body = (await res.body.json()) as { error: { code: string; message: string } }
  assert.equal(body.error.code, 'WEFT_ERR_FAULT_INJECTED')
  assert.match(body.error.message, /route rule admin/)
  assert.equal(v1a.hits + v1b.hits + v2.hits, before, 'nothing reached an upstream')
  // The same path with another method does not match the rule.
  assert.equal((await served('http://payments/admin/users', { method: 'GET' })).status, 200)
})

test('the route rule name is the metrics label', async () => {
  const text = await mesh.metrics()
  assert.match(text, /http_client_request_duration_seconds_count\{[^}]*route="split"[^}]*\} \d+/)
  assert.match(text, /http_client_request_duration_seconds_count\{method="DELETE",status_code="418",route="admin"[^}]*error_code="WEFT_ERR_FAULT_INJECTED"\} 1/)
})

test('fault delay: the injected delay counts against the rule timeout', async () => {
  const up = await startUpstream('slowed')
  const m = await quietMesh([
    service('inventory', { endpoints: [{ address: up.address }] }),
    route('inventory-faults', {
      service: 'inventory',
      rules: [
        { name: 'too-slow', matches: [{ path: { prefix: '/slow' } }], timeout: '100ms', fault: { delay: { percent: 100, fixedDelay: '2s' } } },
        { name: 'delayed', fault: { delay: { percent: 100, fixedDelay: '30ms' } } },
      ],
    }),
  ])
  try {
    const err = await m.request('http://inventory/slow').catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_DEADLINE_EXCEEDED'), String(err))
    assert.equal(err.details.route, 'too-slow')
    assert.equal(up.hits, 0, 'the call ended during the injected delay')
    const res = await m.request('http://inventory/ok')
    assert.equal(res.statusCode, 200, 'a delay inside the timeout only delays')
    await res.body.dump()
    assert.equal(up.hits, 1)
  } finally {
    await m.close()
    await up.close()
  }
})

test('query matches parse the query once per request, shared by every rule that looks at it', async () => {
  const { compileRule } = await import('../../src/routing/match.js')
  const first = compileRule([{ query: { tier: { exact: 'gold' } } }])
  const second = compileRule([{ query: { region: { prefix: 'eu' } }, path: { prefix: '/api' } }])
  const view = { method: 'GET', pathname: '/api/x', search: 'tier=silver&region=eu-west', headers: {} } as Parameters<typeof first>[0]
  assert.equal(first(view), false)
  const parsed = view.query
  assert.ok(parsed instanceof URLSearchParams, 'the first query match parsed the query')
  assert.equal(second(view), true)
  assert.equal(view.query, parsed, 'the second match reused it')
  assert.equal(compileRule([{ query: { tier: { exact: 'gold' } } }])({ method: 'GET', pathname: '/', search: '', headers: {} }), false)
})
