// The JWKS cache (RELIABILITY J9, J10, F15, S4): cooldown, single flight, negative cache,
// stale-if-error, fail closed, and keys kept across config versions; a real loopback server counts
// every request.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test, type TestContext } from 'node:test'
import { compileRequestAuth } from '../../../src/identity/jwt/authenticator.js'
import { JwksRegistry } from '../../../src/identity/jwt/jwks-cache.js'
import { FakeClock, authenticatorOf, bearer, goodClaims, makeKey, policyOf, sign, startJwksServer, startServer, type TestKey } from './kit.js'

const T = { timeout: 20_000 }
const ISS = 'https://issuer.example'
let key: TestKey, rotated: TestKey
let server: Awaited<ReturnType<typeof startJwksServer>>

before(async () => {
  ;[key, rotated] = await Promise.all([makeKey('ES256', 'k1'), makeKey('ES256', 'k2')])
  server = await startJwksServer([])
})
after(() => server.close())

/** A fresh registry and authenticator over the shared server, reset to serve `mode`. */
function setup(t: TestContext, mode: typeof server.mode = 'ok', options: ConstructorParameters<typeof JwksRegistry>[0] = {}) {
  server.mode = mode
  server.keys = [key.publicJwk]
  const base = server.requests.length
  const clock = new FakeClock()
  const logs: { msg: string; fields?: Record<string, unknown> }[] = []
  const log = (msg: string, fields?: Record<string, unknown>) => void logs.push({ msg, fields })
  const logger = { info: log, warn: log, error: log }
  const jwks = new JwksRegistry({ now: clock.now, logger, ...options })
  t.after(() => jwks.close())
  const authn = authenticatorOf([{ issuer: ISS, jwksUri: `${server.url}/.well-known/jwks.json` }], jwks, clock, logger)
  return { clock, jwks, authn, logs, fetches: () => server.requests.length - base }
}

const randomKidToken = (clock: FakeClock) => sign({ ...key, kid: randomBytes(8).toString('hex') }, goodClaims(clock, ISS))

test('S4: a flood of 5,000 random kids over 50 s makes at most 2 fetches, and valid tokens verify throughout', T, async (t) => {
  const s = setup(t)
  const valid = await Promise.all(Array.from({ length: 50 }, (_, i) => sign(key, goodClaims(s.clock, ISS, { sub: `user-${i}`, exp: s.clock.seconds + 3600 }))))
  // One signed token; only its header (the kid) changes below, so no flood token can verify.
  const [, p, sig] = (await randomKidToken(s.clock)).split('.')
  let refused = 0
  for (let i = 0; i < 5_000; i++) {
    const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid: randomBytes(8).toString('hex') })).toString('base64url')
    const r = await s.authn.authenticate(bearer(`${header}.${p}.${sig}`))
    if (r.kind === 'invalid' && r.check === 'unknown_key') refused++
    if (i % 100 === 0) assert.equal((await s.authn.authenticate(bearer(valid[i / 100]!))).kind, 'ok', `valid token at ${i}`)
    s.clock.advance(10)
  }
  assert.equal(refused, 5_000)
  assert.ok(s.fetches() <= 2, `fetches: ${s.fetches()}`)
  assert.ok(s.authn.stats().verifications <= 50, 'no random-kid token reached a signature check')
})

test('S4: concurrent unknown kids after the cooldown share one refresh (single flight)', T, async (t) => {
  const s = setup(t)
  assert.equal((await s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS))))).kind, 'ok')
  s.clock.advance(31_000)
  const tokens = await Promise.all(Array.from({ length: 200 }, () => randomKidToken(s.clock)))
  const results = await Promise.all(tokens.map((tok) => s.authn.authenticate(bearer(tok))))
  assert.ok(results.every((r) => r.kind === 'invalid' && r.check === 'unknown_key'))
  assert.equal(s.fetches(), 2, 'the initial fetch and one shared refresh')
})

test('S4: the cooldown holds while the served set is empty: no keys, fail closed, one fetch per 30 s', T, async (t) => {
  const s = setup(t, 'empty')
  for (let i = 0; i < 600; i++) {
    const r = await s.authn.authenticate(bearer(await randomKidToken(s.clock)))
    assert.equal(r.kind === 'invalid' && r.check, 'no_keys')
    s.clock.advance(100) // 60 s in all
  }
  assert.ok(s.fetches() <= 3, `fetches: ${s.fetches()}`)
  assert.equal(s.jwks.status()[0]!.keys, 0, 'an empty set is never installed')
})

test('J10: no keys ever loaded (endpoint down from the start) → every token refused, saying why; recovery after one cooldown', T, async (t) => {
  const s = setup(t, 'down')
  const token = await sign(key, goodClaims(s.clock, ISS, { exp: s.clock.seconds + 3600 }))
  const r = await s.authn.authenticate(bearer(token))
  assert.equal(r.kind === 'invalid' && r.check, 'no_keys')
  assert.match(r.kind === 'invalid' ? r.reason : '', /no keys have been loaded for this issuer .*so every token is refused until they load \(issuer "https:\/\/issuer.example"\)/)
  assert.equal(s.jwks.status()[0]!.lastError, 'HTTP 503')
  assert.match(String(s.logs.find((l) => l.msg === 'JWT refused: no keys loaded for its issuer')?.fields?.keys), /^http:\/\/127\.0\.0\.1:\d+\/\.well-known\/jwks\.json: HTTP 503$/)
  assert.equal((await s.authn.authenticate(bearer(token))).kind, 'invalid')
  assert.equal(s.fetches(), 1, 'no retry inside the cooldown')
  server.mode = 'ok'
  s.clock.advance(29_000)
  assert.equal((await s.authn.authenticate(bearer(token))).kind, 'invalid')
  s.clock.advance(2_000)
  assert.equal((await s.authn.authenticate(bearer(token))).kind, 'ok')
  assert.equal(s.fetches(), 2)
})

test('F15: endpoint down after a first load: cached keys keep verifying for 30 min; empty and placeholder sets are never installed', T, async (t) => {
  const s = setup(t)
  const tokenAt = () => sign(key, goodClaims(s.clock, ISS))
  assert.equal((await s.authn.authenticate(bearer(await tokenAt()))).kind, 'ok')
  for (const mode of ['down', 'reset', 'empty', 'garbage'] as const) {
    server.mode = mode
    for (let minute = 0; minute < 8; minute++) {
      s.clock.advance(60_000) // past max age: each use may start a background refresh
      assert.equal((await s.authn.authenticate(bearer(await tokenAt()))).kind, 'ok', `${mode}, minute ${minute}`)
      await new Promise((resolve) => setTimeout(resolve, 5)) // let the background refresh fail
    }
  }
  assert.equal(s.jwks.status()[0]!.keys, 1)
  assert.ok(s.jwks.status()[0]!.lastError, 'the failure is recorded')
  // A new kid during the outage is refused (never a placeholder), and accepted once the endpoint is back.
  server.keys = [key.publicJwk, rotated.publicJwk]
  server.mode = 'down'
  s.clock.advance(31_000)
  const fresh = await sign(rotated, goodClaims(s.clock, ISS))
  assert.equal((await s.authn.authenticate(bearer(fresh))).kind, 'invalid')
  server.mode = 'ok'
  s.clock.advance(31_000)
  const back = await sign(rotated, goodClaims(s.clock, ISS, { sub: 'user-2' }))
  assert.equal((await s.authn.authenticate(bearer(back))).kind, 'ok', 'recovered within one cooldown')
})

test('stale-while-revalidate: past the max age the old set serves while one background refresh runs', T, async (t) => {
  const s = setup(t)
  assert.equal((await s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS))))).kind, 'ok')
  s.clock.advance(9 * 60_000)
  await s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS))))
  assert.equal(s.fetches(), 1, 'younger than 10 min: no refresh')
  s.clock.advance(2 * 60_000)
  await Promise.all(Array.from({ length: 20 }, async (_, i) => s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS, { sub: `u${i}` }))))))
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(s.fetches(), 2)
})

test('the registry keeps keys across two compiles (a new config version starts warm)', T, async (t) => {
  const s = setup(t)
  assert.equal((await s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS))))).kind, 'ok')
  server.mode = 'down'
  const next = compileRequestAuth(policyOf([{ issuer: ISS, jwksUri: `${server.url}/.well-known/jwks.json`, audiences: ['payments', 'billing'] }]).requestAuthentication,
    { service: 'payments', namespace: 'default', jwks: s.jwks, now: s.clock.now })!
  assert.equal((await next.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS, { aud: 'billing' }))))).kind, 'ok')
  assert.equal(s.fetches(), 1, 'the second config version fetched nothing')
  assert.deepEqual(next.jwksUris, [`${server.url}/.well-known/jwks.json`])
  s.jwks.retain([])
  assert.deepEqual(s.jwks.status(), [], 'retain drops caches no config uses')
})

test('first use: concurrent requests share one download; only the configured path is ever requested', T, async (t) => {
  const s = setup(t)
  const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => sign(key, goodClaims(s.clock, ISS, { sub: `u${i}` }))))
  const results = await Promise.all(tokens.map((tok) => s.authn.authenticate(bearer(tok))))
  assert.ok(results.every((r) => r.kind === 'ok'))
  assert.equal(s.fetches(), 1)
  assert.ok(server.requests.every((path) => path === '/.well-known/jwks.json'))
})

test('a redirect is not followed; a slow endpoint times out; an oversized set is refused', T, async (t) => {
  const target = await startServer(() => ({ status: 200, body: JSON.stringify({ keys: [key.publicJwk] }) }))
  const redirect = await startServer(() => ({ status: 302, body: '' }))
  const slow = await startServer(() => 'hang')
  const big = await startServer(() => ({ status: 200, body: JSON.stringify({ keys: [key.publicJwk], pad: 'x'.repeat(600 * 1024) }) }))
  t.after(() => Promise.all([target, redirect, slow, big].map((x) => x.close())))
  const clock = new FakeClock()
  const jwks = new JwksRegistry({ now: clock.now, timeoutMs: 300 })
  t.after(() => jwks.close())
  const token = await sign(key, goodClaims(clock, ISS))
  for (const [srv, why] of [[redirect, /HTTP 302 \(redirects are not followed/], [slow, /no answer within 300ms/], [big, /over the 524288-byte limit/]] as const) {
    const authn = authenticatorOf([{ issuer: ISS, jwksUri: `${srv.url}/jwks` }], jwks, clock)
    const started = Date.now()
    const r = await authn.authenticate(bearer(token))
    assert.equal(r.kind === 'invalid' && r.check, 'no_keys')
    assert.match(jwks.status().find((c) => c.uri.startsWith(srv.url))!.lastError!, why)
    assert.ok(Date.now() - started < 3_000)
  }
  assert.equal(target.requests.length, 0)
})

test('keys in a served set that are unusable are left out, the rest are installed', T, async (t) => {
  const s = setup(t)
  server.keys = [{ kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, { ...key.publicJwk, kid: 'bad', x: 'AAAA' }, key.publicJwk]
  assert.equal((await s.authn.authenticate(bearer(await sign(key, goodClaims(s.clock, ISS))))).kind, 'ok')
  assert.equal(s.jwks.status()[0]!.keys, 1)
})

test('options are checked when the registry is built', () => {
  assert.throws(() => new JwksRegistry({ cooldownMs: -1 }), /invalid option jwks.cooldownMs/)
  assert.throws(() => new JwksRegistry({ timeoutMs: 0 }), /invalid option jwks.timeoutMs/)
})
