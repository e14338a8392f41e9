// RequestAuthentication jwtRules[].clockTolerance at verify time (RELIABILITY F14): the configured
// tolerance, not the default, widens exp, nbf and iat; without the field it is 30 s. The exact
// edges run on a fake clock; the data plane's 401 (a meshed server, real clock) uses margins of
// minutes so a slow machine cannot move a token across an edge.
import assert from 'node:assert/strict'
import http from 'node:http'
import { before, test, type TestContext } from 'node:test'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'
import type { JWTPayload } from 'jose'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import type { AuthnResult } from '../../../src/identity/jwt/authenticator.js'
import { quietMesh, metricValue } from '../../helpers/mesh.js'
import { FakeClock, authenticatorOf, bearer, goodClaims, makeKey, sign, type TestKey } from './kit.js'

const T = { timeout: 20_000 }
const ISS = 'https://issuer.example'
let key: TestKey

before(async () => {
  key = await makeKey('ES256', 'k1')
})

/** An authenticator on a fake clock; `tolerance` is the YAML value, or undefined for no field. */
function setup(t: TestContext, tolerance: string | undefined) {
  const clock = new FakeClock()
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const authn = authenticatorOf([{ issuer: ISS, jwks: { keys: [key.publicJwk] }, ...(tolerance !== undefined ? { extra: `      clockTolerance: ${tolerance}` } : {}) }], jwks, clock)
  const check = async (claims: JWTPayload): Promise<AuthnResult> => authn.authenticate(bearer(await sign(key, goodClaims(clock, ISS, claims))))
  return { clock, authn, check }
}

function rejected(r: AuthnResult): { check: string; reason: string } {
  assert.equal(r.kind, 'invalid', JSON.stringify(r))
  return r as { check: string; reason: string }
}

test('clockTolerance: 5s — expired 3 s ago passes, expired 10 s ago is refused naming the expiry and the 5s tolerance', T, async (t) => {
  const { clock, authn, check } = setup(t, '5s')
  assert.match(authn.describe()[0]!, /clock tolerance 5000ms$/)
  const now = clock.seconds
  assert.equal((await check({ iat: now - 300, exp: now - 3 })).kind, 'ok')
  const r = rejected(await check({ iat: now - 300, exp: now - 10 }))
  assert.equal(r.check, 'expired')
  assert.match(r.reason, /the token expired 10s ago \(exp [^;]+; this host's clock reads [^;]+; clock tolerance 5s\)/)
})

test('clockTolerance: 5s — nbf (and iat) 3 s ahead pass, 10 s ahead are refused naming the clock', T, async (t) => {
  const { clock, check } = setup(t, '5s')
  const now = clock.seconds
  assert.equal((await check({ nbf: now + 3 })).kind, 'ok')
  const nbf = rejected(await check({ nbf: now + 10 }))
  assert.equal(nbf.check, 'not_yet_valid')
  assert.match(nbf.reason, /not valid until .* \(nbf, 10s from now; this host's clock reads [^;]+; clock tolerance 5s\): the issuer's clock is ahead/)
  assert.equal((await check({ iat: now + 3, exp: now + 300 })).kind, 'ok')
  const iat = rejected(await check({ iat: now + 10, exp: now + 300 }))
  assert.equal(iat.check, 'not_yet_valid')
  assert.match(iat.reason, /issued in the future .*10s ahead.*clock tolerance 5s/)
})

test('no clockTolerance: the 30 s default — expired 20 s ago or nbf 20 s ahead pass; 40 s refused naming the 30s tolerance', T, async (t) => {
  const { clock, authn, check } = setup(t, undefined)
  assert.match(authn.describe()[0]!, /clock tolerance 30000ms$/)
  const now = clock.seconds
  assert.equal((await check({ iat: now - 300, exp: now - 20 })).kind, 'ok')
  assert.equal((await check({ nbf: now + 20 })).kind, 'ok')
  const exp = rejected(await check({ iat: now - 300, exp: now - 40 }))
  assert.equal(exp.check, 'expired')
  assert.match(exp.reason, /expired 40s ago .*clock tolerance 30s\)/)
  const nbf = rejected(await check({ nbf: now + 40 }))
  assert.equal(nbf.check, 'not_yet_valid')
  assert.match(nbf.reason, /40s from now.*clock tolerance 30s/)
})

test('clockTolerance: 0s — expired 1 s ago is refused', T, async (t) => {
  const { clock, check } = setup(t, '0s')
  const r = rejected(await check({ iat: clock.seconds - 300, exp: clock.seconds - 1 }))
  assert.equal(r.check, 'expired')
  assert.match(r.reason, /clock tolerance 0s/)
})

/** A meshed payments server whose RequestAuthentication has this tolerance (undefined: none given). */
async function meshedServer(t: TestContext, tolerance: string | undefined) {
  const jwtRule: Record<string, unknown> = { issuer: ISS, jwks: { keys: [key.publicJwk] }, audiences: ['payments'], algorithms: ['ES256'] }
  if (tolerance !== undefined) jwtRule.clockTolerance = tolerance
  const mesh = await quietMesh([
    { apiVersion: 'weft/v1', kind: 'RequestAuthentication', metadata: { name: 'users' }, spec: { service: 'payments', jwtRules: [jwtRule] } },
  ], { service: 'payments' })
  t.after(() => mesh.close())
  const { port } = (await mesh.listen(http.createServer((_req, res) => res.end('ok')), { port: 0, host: '127.0.0.1' })) as AddressInfo
  const call = async (claims: JWTPayload) => {
    const now = Math.floor(Date.now() / 1000)
    const token = await sign(key, { iss: ISS, sub: 'alice', aud: 'payments', ...Object.fromEntries(Object.entries(claims).map(([k, v]) => [k, now + (v as number)])) })
    const r = await request(`http://127.0.0.1:${port}/charge`, { headers: { authorization: `Bearer ${token}` } })
    return { status: r.statusCode, code: r.headers['weft-error-code'], body: await r.body.text() }
  }
  return { mesh, call }
}

test('through a meshed server: the configured clockTolerance decides (5m lets a token expired 2 min ago through; the default 30s refuses it 401 naming the expiry and the tolerance)', T, async (t) => {
  // Claims are offsets in seconds from the moment the token is signed (the reasons may read a
  // second more or less than the offset: the request is verified a moment after signing).
  const wide = await meshedServer(t, '5m')
  assert.equal((await wide.call({ iat: -600, exp: -120 })).status, 200, 'expired 2 min ago, within 5m')
  assert.equal((await wide.call({ nbf: 120, exp: 600 })).status, 200, 'valid in 2 min, within 5m')
  const late = await wide.call({ iat: -1200, exp: -900 })
  assert.equal(late.status, 401)
  assert.equal(late.code, 'WEFT_ERR_UNAUTHENTICATED')
  assert.match(late.body, /JWT rejected: the token expired 1[45]m\d+s ago .*clock tolerance 5m0s\)/)

  const byDefault = await meshedServer(t, undefined)
  const expired = await byDefault.call({ iat: -600, exp: -120 })
  assert.equal(expired.status, 401)
  assert.match(expired.body, /the token expired (2m\d+s|1\d\ds) ago .*clock tolerance 30s\)/)
  const early = await byDefault.call({ nbf: 120, exp: 600 })
  assert.equal(early.status, 401)
  assert.match(early.body, /not valid until .*\(nbf, (2m\d+s|1\d\ds) from now; .*clock tolerance 30s\)/)
  const m = await byDefault.mesh.metrics()
  assert.equal(metricValue(m, 'weft_authn_rejected_total', { reason: 'expired' }), 1)
  assert.equal(metricValue(m, 'weft_authn_rejected_total', { reason: 'not_yet_valid' }), 1)

  const narrow = await meshedServer(t, '5s')
  const n = await narrow.call({ iat: -600, exp: -120 })
  assert.equal(n.status, 401)
  assert.match(n.body, /clock tolerance 5s\)/)
})
