// End-user JWTs on the inbound stack (identity issue): RequestAuthentication verifies, the
// AuthorizationPolicy requires a request principal (authentication configured ≠ required, J11);
// and JWT-SVIDs from the daemon verified through its JWKS.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import { makeKey, sign } from '../identity/jwt/kit.js'
import { quietMesh, metricValue } from '../helpers/mesh.js'
import { applyPolicy, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'

const ISS = 'https://issuer.test'

test('RequestAuthentication + ALLOW requestPrincipals: no token → 403, a bad token → 401 naming the check, a valid one → 200 with the claims in authz', async (t) => {
  const key = await makeKey('ES256', 'k1')
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'RequestAuthentication', metadata: { name: 'users' }, spec: { service: 'payments', jwtRules: [{ issuer: ISS, jwks: { keys: [key.publicJwk] }, audiences: ['payments'], algorithms: ['ES256'] }] } },
    { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'need-user' }, spec: { service: 'payments', action: 'ALLOW', rules: [{ from: [{ requestPrincipals: [`${ISS}/*`] }], when: [{ key: 'request.auth.claims[scope]', values: ['payments:write'] }] }] } },
  ], { service: 'payments' })
  t.after(() => mesh.close())
  let handled = 0
  const { port } = (await mesh.listen(http.createServer((_req, res) => {
    handled++
    res.end('ok')
  }), { port: 0, host: '127.0.0.1' })) as AddressInfo
  const url = `http://127.0.0.1:${port}/charge`
  const call = async (token?: string) => {
    const r = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {} })
    return { status: r.statusCode, code: r.headers['weft-error-code'], body: await r.body.text() }
  }
  const now = Math.floor(Date.now() / 1000)
  const good = await sign(key, { iss: ISS, sub: 'alice', aud: 'payments', exp: now + 300, scope: 'payments:read payments:write' })
  const readOnly = await sign(key, { iss: ISS, sub: 'bob', aud: 'payments', exp: now + 300, scope: 'payments:read' })
  const expired = await sign(key, { iss: ISS, sub: 'alice', aud: 'payments', exp: now - 600 })
  const wrongAud = await sign(key, { iss: ISS, sub: 'alice', aud: 'ledger', exp: now + 300 })

  const none = await call()
  assert.equal(none.status, 403)
  assert.equal(none.code, 'WEFT_ERR_FORBIDDEN')
  assert.equal((await call(good)).status, 200)
  assert.equal((await call(readOnly)).status, 403, 'the scope claim is checked')
  const exp = await call(expired)
  assert.equal(exp.status, 401)
  assert.match(exp.body, /expired/)
  const aud = await call(wrongAud)
  assert.equal(aud.status, 401)
  assert.match(aud.body, /audience/)
  assert.equal(handled, 1)
  const m = await mesh.metrics()
  assert.equal(metricValue(m, 'weft_authn_rejected_total', {}), 2)
})

test('JWT-SVIDs: the daemon signs one for the caller\'s identity and an audience; the server verifies it through the daemon\'s JWKS and authorizes its principal', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, [
    'apiVersion: weft/v1',
    'kind: RequestAuthentication',
    'metadata: { name: workload-jwts }',
    'spec:',
    '  service: payments',
    '  jwtRules:',
    `    - { issuer: "spiffe://weft.local", jwksUri: "${d.url}/v1/jwks", audiences: [payments], algorithms: [ES256] }`,
    '---',
    'apiVersion: weft/v1',
    'kind: AuthorizationPolicy',
    'metadata: { name: payments-jwt-checkout }',
    'spec:',
    '  service: payments',
    '  action: ALLOW',
    '  rules:',
    '    - from: [{ requestPrincipals: ["spiffe://weft.local/spiffe://weft.local/ns/default/sa/checkout"] }]',
    '',
  ].join('\n'))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('paid')), { port: 0, host: '127.0.0.1' })
  const checkout = await controlMesh(d, 'checkout')
  t.after(() => checkout.close())
  await waitEndpoints(checkout, 'payments', 1)

  const token = await checkout.identity.jwtSvid('payments')
  assert.equal(await checkout.identity.jwtSvid('payments'), token, 'reused while fresh')
  const [, payload] = token.split('.')
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { sub: string; aud: unknown; iss: string }
  assert.equal(claims.sub, 'spiffe://weft.local/ns/default/sa/checkout')
  assert.equal(claims.iss, 'spiffe://weft.local')
  const ok = await checkout.request('http://payments/x', { headers: { authorization: `Bearer ${token}` } })
  assert.equal(ok.statusCode, 200)
  await ok.body.text()
  const without = await checkout.request('http://payments/x')
  assert.equal(without.statusCode, 403)
  await without.body.text()
})
