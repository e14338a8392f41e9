// JWT-SVIDs: the daemon's issuer signs, a RequestAuthentication with its JWKS verifies.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader } from 'jose'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import { JwtSvidIssuer } from '../../../src/identity/jwt/jwt-svid.js'
import { FakeClock, authenticatorOf, bearer } from './kit.js'

const T = { timeout: 10_000 }

const CHECKOUT = 'spiffe://weft.local/ns/default/sa/checkout'

test('a JWT-SVID verifies through a RequestAuthentication whose jwks is the issuer\'s and whose issuer is spiffe://<td>', T, async (t) => {
  const clock = new FakeClock()
  const issuer = await JwtSvidIssuer.create({ trustDomain: 'weft.local', now: clock.now })
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const authn = authenticatorOf([{ issuer: issuer.issuer, jwks: issuer.jwks(), algorithms: ['ES256'] }], jwks, clock)
  const { token, expiresAt } = await issuer.sign({ subject: CHECKOUT, audience: 'payments' })
  assert.equal(expiresAt, clock.ms + 300_000)
  const r = await authn.authenticate(bearer(token))
  assert.equal(r.kind, 'ok', JSON.stringify(r))
  if (r.kind !== 'ok') return
  assert.equal(r.issuer, 'spiffe://weft.local')
  assert.equal(r.subject, CHECKOUT)
  assert.equal(r.principal, `spiffe://weft.local/${CHECKOUT}`)
  const other = await issuer.sign({ subject: CHECKOUT, audience: 'ledger' })
  assert.equal((await authn.authenticate(bearer(other.token))).kind, 'invalid', 'audience still applies')
  clock.advance(5 * 60_000 + 31_000)
  const late = await authn.authenticate(bearer((await issuer.sign({ subject: CHECKOUT, audience: 'payments', ttlMs: 1_000 })).token))
  assert.equal(late.kind, 'ok', 'a fresh one verifies later too')
})

test('the token: ES256, kid = JWK thumbprint, typ JWT, iss/sub/aud/iat/exp, lifetime ≤ 5 min', T, async () => {
  const issuer = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
  const { token } = await issuer.sign({ subject: CHECKOUT, audience: ['payments', 'ledger'], ttlMs: 60_000 })
  const header = decodeProtectedHeader(token)
  const claims = decodeJwt(token)
  assert.deepEqual(header, { alg: 'ES256', kid: issuer.kid, typ: 'JWT' })
  assert.equal(issuer.kid, await calculateJwkThumbprint(issuer.jwks().keys[0]!))
  assert.deepEqual([claims.iss, claims.sub, claims.aud], ['spiffe://weft.local', CHECKOUT, ['payments', 'ledger']])
  assert.equal(claims.exp! - claims.iat!, 60)
  const keys = issuer.jwks().keys
  assert.equal(keys.length, 1)
  assert.equal('d' in keys[0]!, false, 'the JWKS is public')
  assert.deepEqual([keys[0]!.kid, keys[0]!.alg, keys[0]!.use], [issuer.kid, 'ES256', 'sig'])
})

test('sign refuses subjects outside the trust domain, trust-domain IDs, empty audiences and long lifetimes', T, async () => {
  const issuer = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
  await assert.rejects(issuer.sign({ subject: 'spiffe://evil.example/ns/default/sa/x', audience: 'a' }), /not in trust domain weft.local/)
  await assert.rejects(issuer.sign({ subject: 'spiffe://weft.local', audience: 'a' }), /is a trust domain, not a workload/)
  await assert.rejects(issuer.sign({ subject: 'https://weft.local/x', audience: 'a' }), /invalid SPIFFE ID/)
  await assert.rejects(issuer.sign({ subject: CHECKOUT, audience: [] }), /invalid option audience/)
  await assert.rejects(issuer.sign({ subject: CHECKOUT, audience: 'a', ttlMs: 5 * 60_000 + 1 }), /invalid option ttlMs/)
  await assert.rejects(JwtSvidIssuer.create({ trustDomain: 'Weft.Local' }), /invalid trust domain/)
})

test('toJwk/fromJwk: a restored issuer keeps its kid, and its tokens verify against the original JWKS', T, async (t) => {
  const clock = new FakeClock()
  const original = await JwtSvidIssuer.create({ trustDomain: 'weft.local', now: clock.now })
  const saved = JSON.parse(JSON.stringify(original.toJwk()))
  assert.equal(typeof saved.d, 'string')
  const restored = await JwtSvidIssuer.fromJwk({ ...saved, kid: 'edited' }, { trustDomain: 'weft.local', now: clock.now })
  assert.equal(restored.kid, original.kid, 'the kid comes from the key, not the file')
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const authn = authenticatorOf([{ issuer: original.issuer, jwks: original.jwks() }], jwks, clock)
  assert.equal((await authn.authenticate(bearer((await restored.sign({ subject: CHECKOUT, audience: 'payments' })).token))).kind, 'ok')
  await assert.rejects(JwtSvidIssuer.fromJwk({ ...saved, d: undefined }, { trustDomain: 'weft.local' }), /EC P-256 private JWK/)
  await assert.rejects(JwtSvidIssuer.fromJwk({ ...saved, crv: 'P-384' }, { trustDomain: 'weft.local' }), /EC P-256 private JWK/)
  await assert.rejects(JwtSvidIssuer.fromJwk({ ...saved, x: saved.y }, { trustDomain: 'weft.local' }), /not a usable P-256 key/)
  const stranger = (await JwtSvidIssuer.create({ trustDomain: 'weft.local' })).toJwk()
  await assert.rejects(JwtSvidIssuer.fromJwk({ ...saved, d: stranger.d }, { trustDomain: 'weft.local' }), /d does not match x and y/)
})
