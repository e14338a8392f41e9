// JWT-SVID key rotation end to end, prepared → active: a meshed server whose RequestAuthentication
// names the daemon's /v1/jwks, started (and its JWKS fetched) BEFORE the rotate, accepts the tokens
// issued right after the rotate, as they still carry the old key's kid (no window of refused valid
// tokens). After the activation (the stored rotate moved 45 s into the past, daemon restarted on
// the same port), new tokens carry the new kid; a verifier that fetched the JWKS before the rotate
// (the same JWKS cache, default settings, on a fake clock moved 45 s on) fetches it again on that
// kid, its cooldown over, and accepts them, and still the old key's tokens.
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { join } from 'node:path'
import { test } from 'node:test'
import { decodeProtectedHeader } from 'jose'
import { ACTIVATE_DELAY_MS } from '../../src/daemon/jwt-keys.js'
import { JwksRegistry } from '../../src/identity/jwt/jwks-cache.js'
import { applyPolicy, call, register, startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { FakeClock, authenticatorOf, bearer } from '../identity/jwt/kit.js'

const POLICY = (url: string) => [
  'apiVersion: weft/v1',
  'kind: RequestAuthentication',
  'metadata: { name: workload-jwts }',
  'spec:',
  '  service: payments',
  '  jwtRules:',
  `    - { issuer: "spiffe://weft.local", jwksUri: "${url}/v1/jwks", audiences: [payments], algorithms: [ES256] }`,
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
].join('\n')

test('a server verifying through the daemon\'s JWKS, started before the rotate, accepts every token issued after it: the old kid until the activation, then the new kid once its JWKS cache may fetch again', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const applied = await applyPolicy(d, POLICY(d.url))
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  await payments.listen(http.createServer((_req, res) => res.end('paid')), { port: 0, host: '127.0.0.1' })
  const early = await controlMesh(d, 'checkout')
  t.after(() => early.close())
  await waitEndpoints(early, 'payments', 1)
  const oldToken = await early.identity.jwtSvid('payments')
  const paid = async (caller: typeof early, token: string, which: string) => {
    const res = await caller.request('http://payments/x', { headers: { authorization: `Bearer ${token}` } })
    const body = await res.body.text()
    assert.equal(res.statusCode, 200, `${which}: ${body}`)
  }
  await paid(early, oldToken, 'a token of the old key, before the rotate (payments fetched the one-key JWKS)')
  // A second verifier with the same JWKS cache on a fake clock, loaded before the rotate too.
  const clock = new FakeClock(Date.now())
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const verifier = authenticatorOf([{ issuer: 'spiffe://weft.local', jwksUri: `${d.url}/v1/jwks` }], jwks, clock)
  assert.equal((await verifier.authenticate(bearer(oldToken))).kind, 'ok')

  const rotated = await call(d.url, 'POST', '/v1/jwt/rotate', d.adminToken)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  assert.equal(decodeProtectedHeader(oldToken).kid, rotated.body.previousKid)
  const late = await controlMesh(d, 'checkout')
  t.after(() => late.close())
  await waitEndpoints(late, 'payments', 1)
  const rightAfter = await late.identity.jwtSvid('payments')
  assert.equal(decodeProtectedHeader(rightAfter).kid, rotated.body.previousKid, 'before the activation, tokens carry the old kid')
  await paid(late, rightAfter, 'a token issued right after the rotate (its JWKS cache has not fetched again)')
  await paid(early, oldToken, 'the old token')
  const none = await late.request('http://payments/x')
  assert.equal(none.statusCode, 403, 'a principal is still required')
  await none.body.text()

  // The activation: the stored rotate moved 45 s into the past, the daemon restarted at the same URL.
  await late.close()
  await early.close()
  await payments.close()
  await d.daemon.close()
  const file = join(d.dataDir, 'ca', 'jwt-key.json')
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), rotatedAt: new Date(Date.now() - ACTIVATE_DELAY_MS).toISOString() }), { mode: 0o600 })
  const again = await startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${d.daemon.port}` })
  t.after(() => again.daemon.close())
  assert.equal(again.url, d.url)
  const inst = await register(again, { service: 'checkout' })
  const issued = await call(again.url, 'POST', `/v1/instances/${inst.id}/jwt-svid`, inst.token, { audience: 'payments' })
  assert.equal(issued.status, 200, JSON.stringify(issued.body))
  const newToken = issued.body.token as string
  assert.equal(decodeProtectedHeader(newToken).kid, rotated.body.kid, 'after the activation, tokens carry the new kid')
  clock.advance(ACTIVATE_DELAY_MS)
  const r = await verifier.authenticate(bearer(newToken))
  assert.equal(r.kind, 'ok', `the new key's token, to a verifier that fetched the JWKS before the rotate: ${JSON.stringify(r)}`)
  assert.equal(jwks.status()[0]!.fetches, 2, 'it fetched the JWKS again on the new kid')
  assert.equal((await verifier.authenticate(bearer(oldToken))).kind, 'ok', 'tokens of the old key still verify')
  assert.equal((await verifier.authenticate(bearer(rightAfter))).kind, 'ok')
})
