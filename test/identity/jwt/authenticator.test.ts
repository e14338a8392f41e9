// The authenticator's plumbing: which RequestAuthentications select a service, where tokens are
// read from, the result's shape, and the verified-token cache.
import assert from 'node:assert/strict'
import { before, test, type TestContext } from 'node:test'
import { isWeftError } from '../../../src/errors/index.js'
import { authnError, compileRequestAuth, type AuthnResult } from '../../../src/identity/jwt/authenticator.js'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import { loadText } from '../../../src/config/load.js'
import { validatePolicy } from '../../../src/config/validate.js'
import { FakeClock, bearer, goodClaims, makeKey, sign, type TestKey } from './kit.js'

const T = { timeout: 10_000 }

const ISS = 'https://issuer.example'
let key: TestKey

before(async () => {
  key = await makeKey('ES256', 'k1')
})

/** An authenticator over inline keys, with `extra` YAML lines in the rule. */
function setup(t: TestContext, extra = '', options: { tokenCacheSize?: number } = {}) {
  const clock = new FakeClock()
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const text = `apiVersion: weft/v1
kind: RequestAuthentication
metadata: { name: users }
spec:
  service: payments
  jwtRules:
    - issuer: ${ISS}
      jwks: ${JSON.stringify({ keys: [key.publicJwk] })}
      audiences: [payments]
      algorithms: [ES256]
${extra}`
  const policy = validatePolicy(loadText(text, 'f.yaml'))
  assert.deepEqual(policy.issues.filter((i) => i.severity === 'error'), [])
  const authn = compileRequestAuth(policy.requestAuthentication, { service: 'payments', namespace: 'default', jwks, now: clock.now, ...options })!
  return { clock, authn }
}

const kindOf = (r: AuthnResult) => (r.kind === 'invalid' ? `invalid:${r.check}` : r.kind)

test('compileRequestAuth: undefined when nothing selects the service; a namespace-wide one selects every service in it', T, (t) => {
  const jwks = new JwksRegistry()
  t.after(() => jwks.close())
  const policy = validatePolicy(loadText(`apiVersion: weft/v1
kind: RequestAuthentication
metadata: { name: users, namespace: shop }
spec:
  jwtRules: [{ issuer: ${ISS}, jwks: ${JSON.stringify({ keys: [key.publicJwk] })}, audiences: [a], algorithms: [ES256] }]
---
apiVersion: weft/v1
kind: RequestAuthentication
metadata: { name: only-ledger }
spec:
  service: ledger
  jwtRules: [{ issuer: ${ISS}, jwks: ${JSON.stringify({ keys: [key.publicJwk] })}, audiences: [a], algorithms: [ES256] }]
`, 'f.yaml'))
  const compile = (service: string, namespace: string) => compileRequestAuth(policy.requestAuthentication, { service, namespace, jwks })
  assert.equal(compile('payments', 'default'), undefined)
  assert.notEqual(compile('ledger', 'default'), undefined)
  assert.notEqual(compile('anything', 'shop'), undefined)
  assert.equal(compile('ledger', 'other'), undefined)
  assert.deepEqual(compile('cart', 'shop')!.describe(), [`RequestAuthentication/users jwtRules[0]: issuer ${ISS}, keys inline (1 key), audiences [a], algorithms [ES256], clock tolerance 30000ms`])
})

test('J11: no token → none (authorization decides); a header without the prefix is no token', T, async (t) => {
  const { authn } = setup(t)
  assert.equal(kindOf(await authn.authenticate({ headers: {}, query: '' })), 'none')
  assert.equal(kindOf(await authn.authenticate({ headers: { authorization: 'Basic dXNlcjpwdw==' }, query: '' })), 'none')
  assert.equal(kindOf(await authn.authenticate({ headers: { authorization: 'Bearer ' }, query: '' })), 'none')
  assert.equal(kindOf(await authn.authenticate({ headers: {}, query: 'access_token=x' })), 'none', 'no query parameter by default')
})

test('ok: principal "iss/sub", audiences as a list, claims frozen; "bearer" in any case', T, async (t) => {
  const { clock, authn } = setup(t)
  const token = await sign(key, goodClaims(clock, ISS, { scope: 'payments:read', nested: { roles: ['a'] } }))
  const r = await authn.authenticate({ headers: { authorization: `bearer ${token}` }, query: '' })
  assert.equal(r.kind, 'ok')
  if (r.kind !== 'ok') return
  assert.deepEqual([r.principal, r.issuer, r.subject, r.audiences], [`${ISS}/user-1`, ISS, 'user-1', ['payments']])
  assert.equal(r.claims.scope, 'payments:read')
  assert.ok(Object.isFrozen(r.claims) && Object.isFrozen((r.claims.nested as { roles: string[] }).roles))
})

test('a token from a cookie, from a query parameter and from a custom header', T, async (t) => {
  const { clock, authn } = setup(t, '      fromCookies: [session]\n      fromParams: [access_token]\n      fromHeaders: [{ name: x-jwt, prefix: "JWT " }]\n')
  const token = await sign(key, goodClaims(clock, ISS))
  assert.equal(kindOf(await authn.authenticate({ headers: { cookie: `theme=dark; session=${token}; x=1` }, query: '' })), 'ok')
  assert.equal(kindOf(await authn.authenticate({ headers: {}, query: `?page=2&access_token=${token}` })), 'ok')
  assert.equal(kindOf(await authn.authenticate({ headers: { 'x-jwt': `JWT ${token}` }, query: '' })), 'ok')
  assert.equal(kindOf(await authn.authenticate({ headers: { authorization: `Bearer ${token}` }, query: '' })), 'none', 'the default header no longer applies')
  assert.equal(kindOf(await authn.authenticate({ headers: { cookie: 'session=abc' }, query: '' })), 'invalid:malformed')
})

test('two different tokens in one request are refused; the same token in two places is one token', T, async (t) => {
  const { clock, authn } = setup(t, '      fromHeaders: [{ name: authorization, prefix: "Bearer " }]\n      fromCookies: [session]\n')
  const a = await sign(key, goodClaims(clock, ISS))
  const b = await sign(key, goodClaims(clock, ISS, { sub: 'user-2' }))
  const r = await authn.authenticate({ headers: { authorization: `Bearer ${a}`, cookie: `session=${b}` }, query: '' })
  assert.equal(kindOf(r), 'invalid:multiple_tokens')
  assert.match(r.kind === 'invalid' ? r.reason : '', /header "authorization", cookie "session"/)
  assert.equal(kindOf(await authn.authenticate({ headers: { cookie: `session=${a}; session=${b}` }, query: '' })), 'invalid:multiple_tokens')
  assert.equal(kindOf(await authn.authenticate({ headers: { authorization: `Bearer ${a}`, cookie: `session=${a}` }, query: '' })), 'ok')
})

test('the verified-token cache: a second authenticate of the same token does not call jose; entries end at exp', T, async (t) => {
  const { clock, authn } = setup(t)
  const token = await sign(key, goodClaims(clock, ISS, { exp: clock.seconds + 20 }))
  const first = await authn.authenticate(bearer(token))
  assert.equal(authn.stats().verifications, 1)
  const second = await authn.authenticate(bearer(token))
  assert.equal(second, first, 'the same frozen result')
  assert.deepEqual(authn.stats(), { verifications: 1, cacheHits: 1, cachedTokens: 1 })
  clock.advance(21_000) // past exp, inside the tolerance: verified again, still ok
  assert.equal(kindOf(await authn.authenticate(bearer(token))), 'ok')
  assert.equal(authn.stats().verifications, 2)
  clock.advance(30_000) // past exp + tolerance
  assert.equal(kindOf(await authn.authenticate(bearer(token))), 'invalid:expired')
})

test('the verified-token cache is bounded (oldest out first) and trusts a token at most 60 s', T, async (t) => {
  const { clock, authn } = setup(t, '', { tokenCacheSize: 2 })
  const tokens = await Promise.all([1, 2, 3].map((i) => sign(key, goodClaims(clock, ISS, { sub: `u${i}`, exp: clock.seconds + 3600 }))))
  for (const tok of tokens) await authn.authenticate(bearer(tok))
  assert.equal(authn.stats().cachedTokens, 2)
  await authn.authenticate(bearer(tokens[0]!))
  assert.equal(authn.stats().verifications, 4, 'the first token was dropped')
  await authn.authenticate(bearer(tokens[2]!))
  assert.equal(authn.stats().cacheHits, 1)
  clock.advance(61_000)
  await authn.authenticate(bearer(tokens[2]!))
  assert.equal(authn.stats().verifications, 5, 'verified again after 60 s')
})

test('a rejected token maps to 401 WEFT_ERR_UNAUTHENTICATED with the check in details', T, async (t) => {
  const { authn } = setup(t)
  const r = await authn.authenticate(bearer('not-a-jwt'))
  assert.equal(r.kind, 'invalid')
  if (r.kind !== 'invalid') return
  const err = authnError(r)
  assert.ok(isWeftError(err, 'WEFT_ERR_UNAUTHENTICATED'))
  assert.equal(err.httpStatus, 401)
  assert.equal(err.details.check, 'malformed')
  assert.match(err.message, /^JWT rejected: not a JWT/)
})
