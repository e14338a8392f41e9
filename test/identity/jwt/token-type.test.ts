// RequestAuthentication jwtRules[].tokenTypes (RELIABILITY J6, RFC 8725 §3.11): explicit typing, so
// an ID token or a JWT-SVID (typ JWT) of the same issuer is not taken for an access token. The
// checks run on a fake clock against real jose keys; the data plane's 401 and its metric run
// through a meshed node:http server on loopback.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { before, test, type TestContext } from 'node:test'
import { request } from 'undici'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import type { AuthnResult } from '../../../src/identity/jwt/authenticator.js'
import { metricValue, quietMesh } from '../../helpers/mesh.js'
import { FakeClock, authenticatorOf, bearer, goodClaims, makeKey, sign, type RuleYaml, type TestKey } from './kit.js'

const T = { timeout: 20_000 }
const ISS = 'https://issuer.example'
let key: TestKey

before(async () => {
  key = await makeKey('ES256', 'k1')
})

function setup(t: TestContext, rules: Omit<RuleYaml, 'issuer' | 'jwks'>[]) {
  const clock = new FakeClock()
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const authn = authenticatorOf(rules.map((r) => ({ issuer: ISS, jwks: { keys: [key.publicJwk] }, ...r })), jwks, clock)
  /** A good token of ISS with this typ header (undefined: no typ at all). */
  const token = (typ: string | undefined, sub = 'user-1') => sign(key, goodClaims(clock, ISS, { sub }), typ === undefined ? {} : { header: { typ } })
  return { clock, authn, token }
}

function invalidOf(r: AuthnResult) {
  assert.equal(r.kind, 'invalid', JSON.stringify(r))
  return r as Extract<AuthnResult, { kind: 'invalid' }>
}

test('tokenTypes [at+jwt]: at+jwt, application/at+jwt and AT+JWT verify; JWT, id_token+jwt, text/at+jwt and no typ are refused as "type" before any verify', T, async (t) => {
  const s = setup(t, [{ extra: '      tokenTypes: [at+jwt]' }])
  assert.match(s.authn.describe()[0]!, /algorithms \[ES256\], token types \[at\+jwt\], clock tolerance/)
  for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT', 'Application/At+Jwt']) {
    assert.equal((await s.authn.authenticate(bearer(await s.token(typ)))).kind, 'ok', typ)
  }
  const verified = s.authn.stats().verifications
  const jwt = invalidOf(await s.authn.authenticate(bearer(await s.token('JWT'))))
  assert.equal(jwt.check, 'type')
  assert.equal(jwt.reason, 'token type (typ) "JWT" is not accepted for issuer "https://issuer.example" (accepted: "at+jwt"); an ID token or another kind of token of the same issuer is not an access token')
  for (const typ of ['id_token+jwt', 'text/at+jwt', 'application/jwt', '']) {
    assert.equal(invalidOf(await s.authn.authenticate(bearer(await s.token(typ)))).check, 'type', typ)
  }
  const none = invalidOf(await s.authn.authenticate(bearer(await s.token(undefined))))
  assert.equal(none.check, 'type')
  assert.match(none.reason, /the token header has no "typ"; issuer "https:\/\/issuer.example" accepts only token types "at\+jwt"/)
  // A non-string typ is refused the same way; a hostile one is quoted and escaped.
  assert.equal(invalidOf(await s.authn.authenticate(bearer(await s.token(['at+jwt'] as never)))).check, 'type')
  const crlf = invalidOf(await s.authn.authenticate(bearer(await s.token('at+jwt\r\nX-Injected: 1'))))
  assert.equal(crlf.check, 'type')
  assert.doesNotMatch(crlf.reason, /[\r\n]/)
  assert.equal(s.authn.stats().verifications, verified, 'a wrong typ costs no signature verify')
})

test('without tokenTypes, typ is not checked (unchanged): at+jwt, JWT and no typ all verify', T, async (t) => {
  const s = setup(t, [{}])
  assert.doesNotMatch(s.authn.describe()[0]!, /token types/)
  for (const typ of ['at+jwt', 'application/at+jwt', 'JWT', undefined]) {
    assert.equal((await s.authn.authenticate(bearer(await s.token(typ)))).kind, 'ok', String(typ))
  }
})

test('the verified-token cache cannot carry a typ past a rule that requires another: a JWT token accepted where typ is unchecked is still refused where at+jwt is required', T, async (t) => {
  // Same issuer, two rules: x-id-token with typ unchecked, the Authorization header with [at+jwt].
  const s = setup(t, [
    { extra: '      fromHeaders: [{ name: x-id-token }]' },
    { extra: '      tokenTypes: [at+jwt]\n      fromHeaders: [{ name: authorization, prefix: "Bearer " }]' },
  ])
  const idToken = await s.token('JWT')
  assert.equal((await s.authn.authenticate({ headers: { 'x-id-token': idToken }, query: '' })).kind, 'ok')
  assert.equal((await s.authn.authenticate({ headers: { 'x-id-token': idToken }, query: '' })).kind, 'ok')
  assert.equal(s.authn.stats().cacheHits, 1, 'cached under the rule that accepted it')
  for (let i = 0; i < 2; i++) assert.equal(invalidOf(await s.authn.authenticate(bearer(idToken))).check, 'type')
  assert.equal(s.authn.stats().cacheHits, 1, 'no cache hit where the accepting rule does not apply')
  // An access token is accepted and cached on its own rule as before.
  const access = await s.token('at+jwt')
  assert.equal((await s.authn.authenticate(bearer(access))).kind, 'ok')
  assert.equal((await s.authn.authenticate(bearer(access))).kind, 'ok')
  assert.equal(s.authn.stats().cacheHits, 2)
})

/** A meshed payments server; `tokenTypes` undefined: the rule has no such field. */
async function meshedServer(t: TestContext, tokenTypes: string[] | undefined) {
  const jwtRule: Record<string, unknown> = { issuer: ISS, jwks: { keys: [key.publicJwk] }, audiences: ['payments'], algorithms: ['ES256'] }
  if (tokenTypes !== undefined) jwtRule.tokenTypes = tokenTypes
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'RequestAuthentication', metadata: { name: 'users' }, spec: { service: 'payments', jwtRules: [jwtRule] } },
  ], { service: 'payments' })
  t.after(() => mesh.close())
  const { port } = (await mesh.listen(http.createServer((_req, res) => res.end('ok')), { port: 0, host: '127.0.0.1' })) as AddressInfo
  const call = async (typ: string | undefined) => {
    const now = Math.floor(Date.now() / 1000)
    const token = await sign(key, { iss: ISS, sub: 'alice', aud: 'payments', iat: now, exp: now + 300 }, typ === undefined ? {} : { header: { typ } })
    const r = await request(`http://127.0.0.1:${port}/charge`, { headers: { authorization: `Bearer ${token}` } })
    const body = await r.body.text()
    return { status: r.statusCode, code: r.headers['weft-error-code'], message: r.statusCode === 200 ? body : (JSON.parse(body) as { error: { message: string } }).error.message }
  }
  return { mesh, call }
}

test('through a meshed server: tokenTypes [at+jwt] answers 200 to at+jwt and application/at+jwt, 401 naming the type to JWT and to no typ; without tokenTypes all pass', T, async (t) => {
  const typed = await meshedServer(t, ['at+jwt'])
  assert.equal((await typed.call('at+jwt')).status, 200)
  assert.equal((await typed.call('application/at+jwt')).status, 200)
  const jwt = await typed.call('JWT')
  assert.deepEqual([jwt.status, jwt.code], [401, 'WEFT_ERR_UNAUTHENTICATED'])
  assert.match(jwt.message, /JWT rejected: token type \(typ\) "JWT" is not accepted for issuer "https:\/\/issuer.example" \(accepted: "at\+jwt"\)/)
  const missing = await typed.call(undefined)
  assert.deepEqual([missing.status, missing.code], [401, 'WEFT_ERR_UNAUTHENTICATED'])
  assert.match(missing.message, /JWT rejected: the token header has no "typ"/)
  assert.equal(metricValue(await typed.mesh.metrics(), 'weft_authn_rejected_total', { reason: 'type' }), 2)

  const untyped = await meshedServer(t, undefined)
  for (const typ of ['at+jwt', 'application/at+jwt', 'JWT', undefined]) {
    assert.equal((await untyped.call(typ)).status, 200, String(typ))
  }
  assert.equal(metricValue(await untyped.mesh.metrics(), 'weft_authn_rejected_total'), 0)
})
