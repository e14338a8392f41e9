// The JWT security suite (RELIABILITY §3.1 J1–J8, §4 S1–S3, F14): each test is one attack or one
// edge, against a real loopback JWKS server that counts its requests.
import assert from 'node:assert/strict'
import { createHmac, createPublicKey } from 'node:crypto'
import { after, before, test, type TestContext } from 'node:test'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import type { AuthnResult } from '../../../src/identity/jwt/authenticator.js'
import { FakeClock, authenticatorOf, b64, bearer, forge, goodClaims, makeKey, sign, startJwksServer, startServer, type CountingServer, type TestKey } from './kit.js'

const T = { timeout: 10_000 }
const A = 'https://issuer.example'
const B = 'https://other.example'
let ecA: TestKey, rsaA: TestKey, rsaB: TestKey, attacker: TestKey
let jwksA: Awaited<ReturnType<typeof startJwksServer>>
let evil: CountingServer

before(async () => {
  ;[ecA, rsaA, rsaB, attacker] = await Promise.all([makeKey('ES256', 'a-ec'), makeKey('RS256', 'a-rsa'), makeKey('RS256', 'b-rsa'), makeKey('ES256', 'evil')])
  jwksA = await startJwksServer([ecA.publicJwk, rsaA.publicJwk])
  evil = await startServer(() => ({ status: 200, body: JSON.stringify({ keys: [attacker.publicJwk] }) }))
})
after(async () => {
  await jwksA.close()
  await evil.close()
})

/** A fresh registry, clock and authenticator: issuer A (remote, ES256 only), issuer B (inline, RS256). */
async function setup(t: TestContext) {
  const clock = new FakeClock()
  const logs: { msg: string; fields?: Record<string, unknown> }[] = []
  const log = (msg: string, fields?: Record<string, unknown>) => void logs.push({ msg, fields })
  const jwks = new JwksRegistry({ now: clock.now, logger: { info: log, warn: log, error: log } })
  t.after(() => jwks.close())
  const base = jwksA.requests.length
  const authn = authenticatorOf([
    { issuer: A, jwksUri: `${jwksA.url}/jwks.json`, algorithms: ['ES256'] },
    { issuer: B, jwks: { keys: [rsaB.publicJwk] }, algorithms: ['RS256'] },
  ], jwks, clock)
  const valid = await sign(ecA, goodClaims(clock, A))
  assert.equal((await authn.authenticate(bearer(valid))).kind, 'ok', 'control: a good token verifies')
  assert.equal(jwksA.requests.length - base, 1, 'one initial fetch')
  /** JWKS requests after the initial one. */
  const fetches = () => jwksA.requests.length - base - 1
  return { clock, jwks, authn, logs, fetches }
}

function invalidOf(r: AuthnResult) {
  assert.equal(r.kind, 'invalid', JSON.stringify(r))
  return r as Extract<AuthnResult, { kind: 'invalid' }>
}

test('S1: alg "none" (any case) is refused; jose is never called', T, async (t) => {
  const s = await setup(t)
  const before = s.authn.stats().verifications
  for (const alg of ['none', 'None', 'NONE']) {
    const r = invalidOf(await s.authn.authenticate(bearer(forge({ alg, kid: 'a-ec' }, goodClaims(s.clock, A), ''))))
    assert.equal(r.check, 'unsigned')
    assert.match(r.reason, /unsigned tokens are never accepted/)
  }
  assert.equal(s.authn.stats().verifications, before)
})

test('S1: HS256 signed with the RSA public key (PEM and DER) is refused: HMAC is never an allowed algorithm', T, async (t) => {
  const s = await setup(t)
  const rsaPublic = createPublicKey({ key: rsaB.publicJwk as never, format: 'jwk' })
  for (const secret of [rsaPublic.export({ type: 'spki', format: 'pem' }), rsaPublic.export({ type: 'spki', format: 'der' }), JSON.stringify(rsaB.publicJwk)]) {
    const input = `${b64({ alg: 'HS256', kid: 'b-rsa', typ: 'JWT' })}.${b64(goodClaims(s.clock, B))}`
    const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
    const r = invalidOf(await s.authn.authenticate(bearer(token)))
    assert.equal(r.check, 'algorithm')
    assert.match(r.reason, /"HS256" is not allowed for issuer "https:\/\/other.example" \(allowed: RS256\); shared-secret/)
  }
})

test('S1: HS256 signed with the EC public key bytes is refused', T, async (t) => {
  const s = await setup(t)
  const ecPublic = createPublicKey({ key: ecA.publicJwk as never, format: 'jwk' })
  const raw = Buffer.concat([Buffer.from([4]), Buffer.from(ecA.publicJwk.x!, 'base64url'), Buffer.from(ecA.publicJwk.y!, 'base64url')])
  for (const secret of [raw, ecPublic.export({ type: 'spki', format: 'der' }), ecPublic.export({ type: 'spki', format: 'pem' })]) {
    const input = `${b64({ alg: 'HS256', kid: 'a-ec' })}.${b64(goodClaims(s.clock, A))}`
    const r = invalidOf(await s.authn.authenticate(bearer(`${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`)))
    assert.equal(r.check, 'algorithm')
  }
})

test('J1: an algorithm outside the issuer\'s list is refused even when its JWKS holds a key for it', T, async (t) => {
  const s = await setup(t)
  // Issuer A publishes an RSA key too, but its rule pins ES256.
  const r = invalidOf(await s.authn.authenticate(bearer(await sign(rsaA, goodClaims(s.clock, A)))))
  assert.equal(r.check, 'algorithm')
  assert.match(r.reason, /"RS256" is not allowed for issuer "https:\/\/issuer.example" \(allowed: ES256\)/)
  // The same algorithm is fine for the issuer that allows it.
  assert.equal((await s.authn.authenticate(bearer(await sign(rsaB, goodClaims(s.clock, B))))).kind, 'ok')
})

test('J3: keys belong to their issuer: a token claiming issuer A signed with B\'s key is refused', T, async (t) => {
  const s = await setup(t)
  const asA = { ...rsaB, alg: 'RS256' as const }
  const r = invalidOf(await s.authn.authenticate(bearer(await sign(asA, goodClaims(s.clock, A)))))
  assert.equal(r.check, 'algorithm') // A allows ES256 only
  const ecB = await makeKey('ES256', 'b-rsa')
  const r2 = invalidOf(await s.authn.authenticate(bearer(await sign(ecB, goodClaims(s.clock, A)))))
  assert.equal(r2.check, 'unknown_key')
  assert.match(r2.reason, /no ES256 key with kid "b-rsa" in the issuer's key set .*\(issuer "https:\/\/issuer.example"\)/)
  assert.doesNotMatch(r2.reason, /127\.0\.0\.1/, 'no key set URI in what the client sees')
})

test('S2: wrong issuer, and no iss at all', T, async (t) => {
  const s = await setup(t)
  const r = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, 'https://evil.example')))))
  assert.equal(r.check, 'issuer')
  assert.match(r.reason, /issuer "https:\/\/evil.example" is not configured for this service/)
  const noIss = goodClaims(s.clock, A)
  delete noIss.iss
  assert.equal(invalidOf(await s.authn.authenticate(bearer(await sign(ecA, noIss)))).check, 'issuer')
})

test('S2/J4: wrong audience and missing audience', T, async (t) => {
  const s = await setup(t)
  const wrong = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { aud: ['ledger', 'billing'] })))))
  assert.equal(wrong.check, 'audience')
  assert.match(wrong.reason, /audience .*ledger.*billing.* is not one this service accepts \("payments"\)/)
  const claims = goodClaims(s.clock, A)
  delete claims.aud
  const missing = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, claims))))
  assert.equal(missing.check, 'audience')
  assert.match(missing.reason, /no "aud" claim/)
  assert.equal((await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { aud: ['ledger', 'payments'] }))))).kind, 'ok')
})

test('S2: expired, not yet valid, and issued in the future — each names the check and the clock', T, async (t) => {
  const s = await setup(t)
  const now = s.clock.seconds
  const expired = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { iat: now - 3600, exp: now - 600 })))))
  assert.equal(expired.check, 'expired')
  assert.match(expired.reason, /expired 10m0s ago \(exp 2029-12-31T23:50:00.000Z; this host's clock reads 2030-01-01T00:00:00.000Z; clock tolerance 30s\)/)
  const early = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { nbf: now + 600 })))))
  assert.deepEqual([early.check, early.clockSkew], ['not_yet_valid', true])
  assert.match(early.reason, /not valid until .*10m0s from now.*clock is ahead/)
  const future = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { iat: now + 600, exp: now + 900 })))))
  assert.deepEqual([future.check, future.clockSkew], ['not_yet_valid', true])
  assert.match(future.reason, /issued in the future .*10m0s ahead.*clock/)
})

test('F14: clock skew within the 30s tolerance is accepted; 10 minutes of skew is refused naming the clock', T, async (t) => {
  const s = await setup(t)
  const now = s.clock.seconds
  for (const claims of [{ iat: now - 320, exp: now - 20 }, { nbf: now + 20 }, { iat: now + 20, exp: now + 320 }]) {
    assert.equal((await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, claims))))).kind, 'ok', JSON.stringify(claims))
  }
  // A fresh token minted by an issuer whose clock is 10 minutes ahead of ours.
  const ahead = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { iat: now + 600, nbf: now + 600, exp: now + 900 })))))
  assert.equal(ahead.clockSkew, true)
  assert.match(ahead.reason, /clock/)
  // A fresh token seen by a host whose clock is 10 minutes ahead of the issuer's.
  const behind = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { iat: now - 600, exp: now - 300 })))))
  assert.equal(behind.check, 'expired')
  assert.match(behind.reason, /if it was just issued, check this host's clock and the issuer's/)
})

test('S3: hostile kids are map keys only: path, SQL, 10 KB and CRLF kids are refused; nothing is fetched beyond the cooldown', T, async (t) => {
  const s = await setup(t)
  for (const kid of ['../../dev/null', "' OR 1=1--"]) {
    const r = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid } }))))
    assert.equal(r.check, 'unknown_key', kid)
  }
  const huge = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid: 'k'.repeat(10_000) } }))))
  assert.equal(huge.check, 'too_large')
  const long = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid: 'k'.repeat(300) } }))))
  assert.equal(long.check, 'kid')
  assert.ok(long.reason.length < 400, 'the kid is truncated in the reason')
  const crlf = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid: 'a-ec\r\nX-Injected: 1' } }))))
  assert.equal(crlf.check, 'kid')
  assert.doesNotMatch(crlf.reason, /[\r\n]/)
  assert.match(crlf.reason, /a-ec\\u000d\\u000aX-Injected/)
  assert.equal(s.fetches(), 0, 'within the cooldown no kid causes a fetch')
  // After the cooldown one unknown kid may refresh once; the log line carries it escaped.
  s.clock.advance(31_000)
  const kid = '../../dev/null\u2028x'
  assert.equal(invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid } })))).check, 'unknown_key')
  assert.equal(s.fetches(), 1)
  const line = s.logs.find((l) => l.msg === 'refreshing JWT key set')!
  assert.equal(line.fields!.why, 'unknown kid "../../dev/null\\u2028x"')
  // The same kid again, even after another cooldown: remembered as unknown, no fetch.
  s.clock.advance(31_000)
  await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A), { header: { kid } })))
  assert.equal(s.fetches(), 1)
})

test('S3/J8: tokens carrying jku, x5u, jwk or x5c are refused with 0 requests to the URL they name', T, async (t) => {
  const s = await setup(t)
  const claims = goodClaims(s.clock, A)
  const headers = [
    { jku: `${evil.url}/jwks.json` },
    { x5u: `${evil.url}/cert.pem` },
    { jwk: attacker.publicJwk },
    { x5c: ['MIIBszCCAVmgAwIBAgIU'] },
    { jku: `${evil.url}/jwks.json`, kid: 'a-ec' },
  ]
  for (const header of headers) {
    const r = invalidOf(await s.authn.authenticate(bearer(await sign(attacker, claims, { header }))))
    assert.equal(r.check, 'key_header', JSON.stringify(header))
    assert.match(r.reason, /never fetched or used/)
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(evil.requests.length, 0)
  assert.equal(s.fetches(), 0)
})

test('signature: a token signed by another key under a known kid, or tampered with, is refused', T, async (t) => {
  const s = await setup(t)
  const impostor = await makeKey('ES256', 'a-ec')
  const r = invalidOf(await s.authn.authenticate(bearer(await sign(impostor, goodClaims(s.clock, A)))))
  assert.equal(r.check, 'signature')
  assert.match(r.reason, /does not verify with key "a-ec"/)
  const good = await sign(ecA, goodClaims(s.clock, A, { sub: 'user-1' }))
  const [h, , sig] = good.split('.')
  const tampered = `${h}.${b64(goodClaims(s.clock, A, { sub: 'admin' }))}.${sig}`
  assert.equal(invalidOf(await s.authn.authenticate(bearer(tampered))).check, 'signature')
})

test('S2: required claims: no sub, no exp', T, async (t) => {
  const s = await setup(t)
  const noSub = goodClaims(s.clock, A)
  delete noSub.sub
  assert.match(invalidOf(await s.authn.authenticate(bearer(await sign(ecA, noSub)))).reason, /no "sub" claim/)
  const noExp = goodClaims(s.clock, A)
  delete noExp.exp
  const r = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, noExp))))
  assert.deepEqual([r.check, r.reason], ['claims', 'the token has no "exp" claim, which is required'])
})

test('malformed tokens and tokens over 8 KiB are refused before any verification', T, async (t) => {
  const s = await setup(t)
  const before = s.authn.stats().verifications
  for (const token of ['abc', 'a.b', 'a.b.c.d', 'a+b.c.d', `${b64('[1]')}.${b64({})}.x`, `${b64({ alg: 'ES256' })}.${b64('"str"')}.x`, `${b64({ kid: 'a-ec' })}.${b64(goodClaims(s.clock, A))}.x`]) {
    assert.equal(invalidOf(await s.authn.authenticate(bearer(token))).check, 'malformed', token)
  }
  const big = invalidOf(await s.authn.authenticate(bearer(await sign(ecA, goodClaims(s.clock, A, { pad: 'x'.repeat(9000) })))))
  assert.equal(big.check, 'too_large')
  assert.match(big.reason, /over the 8192 limit/)
  assert.equal(s.authn.stats().verifications, before)
})
