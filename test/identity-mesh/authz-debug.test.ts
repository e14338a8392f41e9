// createMesh `debug: { authz }` (identity-plan: a denial names the deciding policy, "the name, not
// its contents, unless debug is on"): off (the default), a 403 names the policy and rule only; on,
// it also says why, rule by rule, as `weft explain` does — over HTTP (the JSON body's message), in
// the error's details, for gRPC's PERMISSION_DENIED, and for a caller named by its certificate.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { Registry } from 'prom-client'
import { createMesh, isWeftError } from '../../src/index.js'
import { compileAuthz } from '../../src/authz/index.js'
import { loadText } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { authzLayer } from '../../src/inbound/hook-layers.js'
import type { InboundCall, InboundTarget } from '../../src/inbound/call.js'
import { MeshMetrics } from '../../src/telemetry/metrics.js'
import { quietMesh } from '../helpers/mesh.js'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Ledger } from '../helpers/grpc-kit.js'

const quiet = { info() {}, warn() {}, error() {} }

const POLICIES = [
  {
    apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'payments-deny-admin' },
    spec: { service: 'payments', action: 'DENY', rules: [{ to: [{ paths: ['/admin', '/admin/*'] }] }] },
  },
  {
    apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'payments-allow-charges' },
    spec: {
      service: 'payments', action: 'ALLOW', rules: [
        { to: [{ methods: ['POST'], paths: ['/charge'] }] },
        { when: [{ key: 'request.headers[x-team]', values: ['billing'] }] },
      ],
    },
  },
  // Another service's policy: not part of payments' explanation.
  { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ledger-allow-none' }, spec: { service: 'ledger', action: 'ALLOW' } },
]

async function server(debug: boolean | undefined) {
  const mesh = await quietMesh(POLICIES, { service: 'payments', ...(debug === undefined ? {} : { debug: { authz: debug } }) })
  let handled = 0
  const { port } = (await mesh.listen(http.createServer((_req, res) => {
    handled++
    res.end('ok')
  }), { port: 0, host: '127.0.0.1' })) as AddressInfo
  const call = async (method: string, path: string, headers: Record<string, string> = {}) => {
    const r = await request(`http://127.0.0.1:${port}${path}`, { method: method as 'GET', headers })
    const text = await r.body.text()
    return { status: r.statusCode, message: r.statusCode === 403 ? (JSON.parse(text) as { error: { message: string } }).error.message : text }
  }
  return { mesh, call, handled: () => handled }
}

test('debug option: validated like the others, WEFT_ERR_INVALID_ARG naming it', async () => {
  for (const [debug, option] of [['yes', 'debug'], [null, 'debug'], [{ authz: 'on' }, 'debug.authz'], [{ verbose: true }, 'debug.verbose']] as const) {
    const err = await createMesh({ service: 's', logger: quiet, debug: debug as never }).catch((e: unknown) => e)
    assert.ok(isWeftError(err, 'WEFT_ERR_INVALID_ARG'), `${JSON.stringify(debug)}: ${String(err)}`)
    assert.match(err.message, new RegExp(`invalid option ${option.replace('.', '\\.')}:`))
    assert.equal(err.details.option, option)
  }
  const ok = await createMesh({ service: 's', logger: quiet, debug: { authz: false } })
  await ok.close()
})

test('debug.authz off (the default, or false): a 403 names the deciding policy and rule, nothing of what the rules hold', async (t) => {
  for (const debug of [undefined, false]) {
    const s = await server(debug)
    t.after(() => s.mesh.close())
    const deny = await s.call('GET', '/admin/users')
    assert.equal(deny.status, 403)
    assert.equal(deny.message, 'payments: GET /admin/users denied by AuthorizationPolicy: DENY payments-deny-admin rule 0')
    const none = await s.call('GET', '/charge')
    assert.equal(none.status, 403)
    assert.equal(none.message, 'payments: GET /charge denied by AuthorizationPolicy: no rule of ALLOW payments-allow-charges matched')
    for (const m of [deny.message, none.message]) {
      assert.doesNotMatch(m, /debug|rule 1|x-team|billing|POST|\/admin\/\*/, 'no rule contents without debug')
    }
    assert.equal(s.handled(), 0)
  }
})

test('debug.authz on: the 403 also says why, rule by rule, as weft explain prints it; an allowed request is unaffected', async (t) => {
  const s = await server(true)
  t.after(() => s.mesh.close())

  const none = await s.call('GET', '/charge?x=1', { 'x-team': 'ops' })
  assert.equal(none.status, 403)
  assert.equal(none.message, [
    'payments: GET /charge denied by AuthorizationPolicy: no rule of ALLOW payments-allow-charges matched. Why (debug.authz): ' +
      'request: GET "/charge", port ' + none.message.match(/port (\d+)/)![1] + ', peer none (no mTLS), request principal none (no verified JWT)',
    '✗ DENY payments-deny-admin',
    'rule 0: no match (to[0].paths: "/charge" matches none of ["/admin", "/admin/*"])',
    '✗ ALLOW payments-allow-charges',
    'rule 0: no match (to[0].methods: "GET" is none of ["POST"])',
    'rule 1: no match (when[0] request.headers[x-team]: "ops" matches none of ["billing"])',
  ].join('; '))
  assert.doesNotMatch(none.message, /ledger-allow-none/, 'only the policies that select this service')

  // A DENY that matched: its rule is marked as matching; the path shown is the normalised one.
  const deny = await s.call('POST', '//admin/users', { 'x-team': 'billing' })
  assert.equal(deny.status, 403)
  assert.match(deny.message, /^payments: POST \/\/admin\/users denied by AuthorizationPolicy: DENY payments-deny-admin rule 0\. Why \(debug\.authz\): request: POST "\/admin\/users", /)
  assert.match(deny.message, /; ✓ DENY payments-deny-admin; rule 0: matches; ✓ ALLOW payments-allow-charges; rule 0: no match \(to\[0\]\.paths: "\/admin\/users" matches none of \["\/charge"\]\); rule 1: matches$/, 'the ALLOW would have let it in: DENY came first')

  const allowed = await s.call('POST', '/charge')
  assert.equal(allowed.status, 200)
  assert.equal(s.handled(), 1)
})

test('debug.authz on, gRPC: PERMISSION_DENIED details carry the explanation; off, only the policy', async (t) => {
  for (const debug of [true, false]) {
    const mesh = await quietMesh([
      { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'ledger-list-only' }, spec: { service: 'ledger', action: 'ALLOW', rules: [{ to: [{ paths: ['/weft.test.Ledger/List'] }] }] } },
    ], { service: 'ledger', debug: { authz: debug } })
    const server = mesh.grpc.server()
    server.addService(LedgerService, ledgerImpl('ledger-a'))
    const { port } = await mesh.grpc.listen(server, { port: 0, host: '127.0.0.1' })
    const client = new LedgerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Ledger
    t.after(async () => {
      client.close()
      await mesh.close()
    })
    await assert.rejects(get(client, { id: 'a' }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED)
      assert.match(err.details, /no rule of ALLOW ledger-list-only matched/)
      if (debug) assert.match(err.details, /Why \(debug\.authz\): request: POST "\/weft\.test\.Ledger\/Get".*; ✗ ALLOW ledger-list-only; rule 0: no match \(to\[0\]\.paths: "\/weft\.test\.Ledger\/Get" matches none of \["\/weft\.test\.Ledger\/List"\]\)/)
      else assert.doesNotMatch(err.details, /debug|List/)
      return true
    })
  }
})

test('debug.authz on under a daemon: the explanation names the caller\'s SPIFFE ID and the principals it was checked against', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: payments-allow-checkout }',
    'spec:',
    '  service: payments',
    '  action: ALLOW',
    '  rules:',
    '    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }]',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments', { debug: { authz: true } })
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('ok')), { port: 0, host: '127.0.0.1' })
  const ledger = await controlMesh(d, 'ledger')
  t.after(() => ledger.close())
  await waitEndpoints(ledger, 'payments', 1)
  const r = await ledger.request('http://payments/charge')
  assert.equal(r.statusCode, 403)
  const body = (await r.body.json()) as { error: { message: string } }
  assert.match(body.error.message, /no rule of ALLOW payments-allow-checkout matched\. Why \(debug\.authz\): request: GET "\/charge", port \d+, peer "spiffe:\/\/weft\.local\/ns\/default\/sa\/ledger", request principal none \(no verified JWT\); ✗ ALLOW payments-allow-checkout; rule 0: no match \(from\[0\]\.principals: "spiffe:\/\/weft\.local\/ns\/default\/sa\/ledger" matches none of \["spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout"\]\)$/)
})

test('the denial\'s details: policy and rule always; the explanation lines only with debug.authz', () => {
  const engine = compileAuthz(validatePolicy(loadText(POLICIES.map((p) => JSON.stringify(p)).join('\n---\n'), 'p.yaml')).authorization, { service: 'payments', namespace: 'default' })!
  const metrics = new MeshMetrics(new Registry(), 'payments')
  for (const debugAuthz of [false, true]) {
    const target = { service: 'payments', configVersion: 7, security: { authz: engine, metrics, logger: quiet, debugAuthz } } as unknown as InboundTarget
    const handler = authzLayer.wrap(() => assert.fail('must not be allowed'), target)
    let got: unknown
    handler({ method: 'GET', path: '/admin', headers: {}, port: 8080, peer: undefined, auth: undefined } as unknown as InboundCall, (err) => (got = err))
    assert.ok(isWeftError(got, 'WEFT_ERR_FORBIDDEN'))
    assert.equal(got.httpStatus, 403)
    const { explanation, ...rest } = got.details as { explanation?: string[] }
    assert.deepEqual(rest, { service: 'payments', policy: 'payments-deny-admin', rule: 0, reason: 'deny-matched', configVersion: 7 })
    if (!debugAuthz) assert.equal(explanation, undefined)
    else assert.deepEqual(explanation, [
      'request: GET "/admin", port 8080, peer none (no mTLS), request principal none (no verified JWT)',
      '✓ DENY payments-deny-admin',
      '  rule 0: matches',
      '✗ ALLOW payments-allow-charges',
      '  rule 0: no match (to[0].methods: "GET" is none of ["POST"])',
      '  rule 1: no match (when[0] request.headers[x-team]: absent matches none of ["billing"])',
    ])
  }
})
