// JWT-SVID signing key rotation, prepared → active, through a real daemon's API and on the
// service with a fake clock: rotate publishes the new key next to the old one at once, but the old
// key signs until the activation (rotatedAt + 45 s), then the new one; tokens of the old key keep
// verifying (with jose on the served JWKS, and through the JWKS cache a RequestAuthentication
// uses) until retire, after which they are refused. The activation is longer than that cache's
// refetch cooldown, so a verifier that fetched the set just before the rotate accepts the first
// token of the new key. The key set survives a restart mid-rotation (the activation counting from
// the stored rotatedAt), the single-key jwt-key.json of before and the first cut's mid-rotation
// file (old key public only) still load. Admin calls only.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose'
import { ACTIVATE_DELAY_MS, ACTIVATE_MARGIN_MS, JWKS_REFETCH_COOLDOWN_MS, OLD_TOKENS_VALID_MS } from '../../src/daemon/jwt-keys.js'
import { JwtService } from '../../src/daemon/jwt-service.js'
import type { HttpError } from '../../src/daemon/http-error.js'
import { JwksRegistry } from '../../src/identity/jwt/jwks-cache.js'
import { JwtSvidIssuer } from '../../src/identity/jwt/jwt-svid.js'
import { silentLogger } from '../../src/util/logger.js'
import { FakeClock, authenticatorOf, bearer, startJwksServer } from '../identity/jwt/kit.js'
import { call, register, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

const ISS = 'spiffe://weft.local'
const CHECKOUT = 'spiffe://weft.local/ns/default/sa/checkout'

async function daemon(t: TestContext, dataDir?: string): Promise<TestDaemon> {
  const d = await startTestDaemon(dataDir !== undefined ? { dataDir } : {})
  t.after(() => d.daemon.close())
  return d
}

/** A JWT-SVID for a registered checkout instance. */
async function tokenFrom(d: TestDaemon, inst: { id: string; token: string }): Promise<string> {
  const r = await call(d.url, 'POST', `/v1/instances/${inst.id}/jwt-svid`, inst.token, { audience: 'payments' })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  return r.body.token as string
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid
const jwksOf = async (d: TestDaemon) => (await call(d.url, 'GET', '/v1/jwks')).body as { keys: JWK[] }
/** jose against the JWKS the daemon serves now. */
const verify = async (d: TestDaemon, token: string) => jwtVerify(token, createLocalJWKSet(await jwksOf(d)), { issuer: ISS, audience: 'payments' })
const jwtFile = (d: TestDaemon) => join(d.dataDir, 'ca', 'jwt-key.json')
/** Moves the stored rotate `ms` into the past (the daemon reads it at its next start). */
function backdate(file: string, ms: number): void {
  const saved = JSON.parse(readFileSync(file, 'utf8'))
  writeFileSync(file, JSON.stringify({ ...saved, rotatedAt: new Date(Date.now() - ms).toISOString() }), { mode: 0o600 })
}

/** A RequestAuthentication's view of the daemon: jwksUri cache (no refresh cooldown), real clock. */
function verifier(t: TestContext, d: TestDaemon) {
  const jwks = new JwksRegistry({ cooldownMs: 0 })
  t.after(() => jwks.close())
  return authenticatorOf([{ issuer: ISS, jwksUri: `${d.url}/v1/jwks` }], jwks, new FakeClock(Date.now()))
}

test('rotate: the JWKS publishes the new and the old key at once, but new tokens still carry the old kid until the activation (45 s); admin only', async (t) => {
  const d = await daemon(t)
  const inst = await register(d, { service: 'checkout' })
  const oldKid = (await jwksOf(d)).keys[0]!.kid
  const before = await tokenFrom(d, inst)
  assert.equal(kidOf(before), oldKid)
  const authn = verifier(t, d)
  assert.equal((await authn.authenticate(bearer(before))).kind, 'ok', 'the verifier loaded the one-key set')
  const keys0 = await call(d.url, 'GET', '/v1/jwt/keys', d.adminToken)
  assert.deepEqual([keys0.body.kid, keys0.body.signingKid, keys0.body.activatesAt], [oldKid, oldKid, undefined])

  for (const path of ['/v1/jwt/rotate', '/v1/jwt/retire']) {
    assert.equal((await call(d.url, 'POST', path)).status, 401, `${path} without a token`)
    assert.equal((await call(d.url, 'POST', path, d.joinToken)).status, 403, `${path} with a join token`)
  }
  assert.equal((await call(d.url, 'GET', '/v1/jwt/keys')).status, 401)
  assert.equal((await jwksOf(d)).keys.length, 1, 'refused calls changed nothing')

  const rotated = await call(d.url, 'POST', '/v1/jwt/rotate', d.adminToken)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  const newKid = rotated.body.kid as string
  assert.notEqual(newKid, oldKid)
  assert.equal(rotated.body.previousKid, oldKid)
  assert.equal(rotated.body.signingKid, oldKid, 'the old key signs until the activation')
  const rotatedAt = Date.parse(rotated.body.rotatedAt)
  assert.equal(Date.parse(rotated.body.activatesAt) - rotatedAt, ACTIVATE_DELAY_MS)
  assert.equal(ACTIVATE_DELAY_MS, 45_000)
  assert.equal(Date.parse(rotated.body.retireAfter) - rotatedAt, 45_000 + 330_000, 'retire from 5 min 30 s after the activation')
  const jwks = await jwksOf(d)
  assert.deepEqual(jwks.keys.map((k) => k.kid), [newKid, oldKid], 'the new key is published at once')
  assert.ok(jwks.keys.every((k) => k.d === undefined && k.alg === 'ES256' && k.use === 'sig'), 'public keys only')
  assert.deepEqual((await call(d.url, 'GET', '/v1/jwt/keys', d.adminToken)).body, rotated.body)

  const after = await tokenFrom(d, inst)
  assert.equal(kidOf(after), oldKid, 'a JWT-SVID signed before the activation carries the old kid')
  assert.equal((await verify(d, before)).payload.sub, CHECKOUT, 'the old token verifies on the served JWKS')
  assert.equal((await verify(d, after)).payload.sub, CHECKOUT)
  const r = await authn.authenticate(bearer(after))
  assert.equal(r.kind, 'ok', JSON.stringify(r))

  const twice = await call(d.url, 'POST', '/v1/jwt/rotate', d.adminToken)
  assert.equal(twice.status, 409)
  assert.equal(twice.body.error.code, 'WEFT_ERR_CONFLICT')
  assert.match(twice.body.error.message, /rotation is already under way .*retire it first \(weft jwt retire\)/)
  const early = await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken)
  assert.equal(early.status, 409, 'retire while tokens of the old key may be valid')
  assert.match(early.body.error.message, /may still be valid until .*activation.*--force/)
  assert.equal(early.body.error.details.retireAfter, rotated.body.retireAfter)
  assert.deepEqual((await jwksOf(d)).keys.map((k) => k.kid), [newKid, oldKid], 'both still published')
})

test('retire --force: the JWKS is back to the new key alone, which signs at once even before its activation; tokens of the old key are refused; retire with no rotation under way is 409', async (t) => {
  const d = await daemon(t)
  const inst = await register(d, { service: 'checkout' })
  const none = await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken, { force: true })
  assert.equal(none.status, 409)
  assert.equal(none.body.error.code, 'WEFT_ERR_CONFLICT')
  assert.match(none.body.error.message, /no JWT key rotation under way: nothing to retire \(weft jwt rotate first\)/)

  const old = await tokenFrom(d, inst)
  const newKid = (await call(d.url, 'POST', '/v1/jwt/rotate', d.adminToken)).body.kid as string
  assert.equal((await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken, { force: 'yes' })).status, 400)
  assert.equal((await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken, { now: true })).status, 400)
  const retired = await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken, { force: true })
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  assert.deepEqual([retired.body.kid, retired.body.signingKid, retired.body.previousKid, retired.body.activatesAt], [newKid, newKid, undefined, undefined])
  assert.deepEqual((await jwksOf(d)).keys.map((k) => k.kid), [newKid])
  const fresh = await tokenFrom(d, inst)
  assert.equal(kidOf(fresh), newKid, 'the new key signs at once')
  await assert.rejects(verify(d, old), { code: 'ERR_JWKS_NO_MATCHING_KEY' }, 'the old token is refused')
  assert.equal((await verify(d, fresh)).payload.aud, 'payments', 'tokens of the new key verify')
  // A verifier loading the set now refuses the old kid (one with a cached set does so after its refresh).
  const authn = verifier(t, d)
  const refused = await authn.authenticate(bearer(old))
  assert.equal(refused.kind, 'invalid')
  assert.equal(refused.kind === 'invalid' && refused.check, 'unknown_key')
  assert.equal((await authn.authenticate(bearer(fresh))).kind, 'ok')
  assert.equal((await call(d.url, 'POST', '/v1/jwt/retire', d.adminToken, { force: true })).status, 409, 'nothing left to retire')
})

test('restart mid-rotation: both private keys survive (0600); the activation counts from the stored rotate; after it the new key signs and old tokens verify; retire needs no force 5 min 30 s after the activation', async (t) => {
  const first = await daemon(t)
  const inst1 = await register(first, { service: 'checkout' })
  const oldKid = (await jwksOf(first)).keys[0]!.kid
  const newKid = (await call(first.url, 'POST', '/v1/jwt/rotate', first.adminToken)).body.kid as string
  const old = await tokenFrom(first, inst1)
  assert.equal(kidOf(old), oldKid)
  await first.daemon.close()
  const saved = JSON.parse(readFileSync(jwtFile(first), 'utf8'))
  assert.equal(statSync(jwtFile(first)).mode & 0o777, 0o600)
  assert.deepEqual([saved.current.kid, saved.previous.kid, typeof saved.previous.d], [newKid, oldKid, 'string'], 'the old key keeps its private part: it signs until the activation')

  const second = await daemon(t, first.dataDir)
  assert.deepEqual((await jwksOf(second)).keys.map((k) => k.kid), [newKid, oldKid])
  const inst = await register(second, { service: 'checkout' })
  assert.equal(kidOf(await tokenFrom(second, inst)), oldKid, 'a restart does not activate the new key early')
  assert.equal((await call(second.url, 'POST', '/v1/jwt/rotate', second.adminToken)).status, 409, 'still under way after the restart')
  await second.daemon.close()

  // The rotate a little over 45 s ago: the new key signs; the old one is published, its tokens verify.
  backdate(jwtFile(first), ACTIVATE_DELAY_MS + 1_000)
  const third = await daemon(t, first.dataDir)
  const inst3 = await register(third, { service: 'checkout' })
  const fresh = await tokenFrom(third, inst3)
  assert.equal(kidOf(fresh), newKid, 'after the activation, new tokens carry the new kid')
  assert.deepEqual((await jwksOf(third)).keys.map((k) => k.kid), [newKid, oldKid])
  assert.equal((await verify(third, old)).payload.sub, CHECKOUT, 'tokens of the old key still verify')
  assert.equal((await verify(third, fresh)).payload.sub, CHECKOUT)
  const keys = (await call(third.url, 'GET', '/v1/jwt/keys', third.adminToken)).body
  assert.deepEqual([keys.kid, keys.signingKid, keys.previousKid], [newKid, newKid, oldKid])
  const early = await call(third.url, 'POST', '/v1/jwt/retire', third.adminToken)
  assert.equal(early.status, 409, 'tokens the old key signed just before the activation may still be valid')
  await third.daemon.close()

  // The rotate 10 minutes ago: retire without force, and the file is the bare key again.
  backdate(jwtFile(first), 600_000)
  const fourth = await daemon(t, first.dataDir)
  const retired = await call(fourth.url, 'POST', '/v1/jwt/retire', fourth.adminToken)
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  assert.deepEqual((await jwksOf(fourth)).keys.map((k) => k.kid), [newKid])
  const bare = JSON.parse(readFileSync(jwtFile(first), 'utf8'))
  assert.deepEqual([bare.kid, typeof bare.d, bare.current], [newKid, 'string', undefined], 'one key: the single-JWK format of before')
})

test('the service with a fake clock: the old key signs up to the activation, the new one from it; retire needs no force from activation + 5 min 30 s exactly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-jwt-clock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const clock = new FakeClock(Date.now())
  const svc = await JwtService.open(dir, 'weft.local', undefined, silentLogger, { now: clock.now })
  const signingKid = async () => decodeProtectedHeader((await svc.sign(CHECKOUT, { audience: 'payments' })).token).kid
  const oldKid = await signingKid()
  const rotated = await svc.rotate()
  assert.equal(Date.parse(rotated.rotatedAt!), clock.ms)
  clock.advance(ACTIVATE_DELAY_MS - 1)
  assert.equal(await signingKid(), oldKid)
  assert.equal((await svc.view()).signingKid, oldKid)
  clock.advance(1)
  assert.equal(await signingKid(), rotated.kid, 'the new key signs from the activation')
  assert.equal((await svc.view()).signingKid, rotated.kid)
  clock.advance(OLD_TOKENS_VALID_MS - 1)
  await assert.rejects(svc.retire({}), (err: HttpError) => err.status === 409)
  clock.advance(1)
  const retired = await svc.retire({})
  assert.deepEqual(retired.jwks.keys.map((k) => k.kid), [rotated.kid])
  await assert.rejects(JwtService.open(dir, 'weft.local', undefined, silentLogger, { activateDelayMs: -1 }), /activateDelayMs must be zero or more/)
})

test('the activation outlasts the verifier cache\'s refetch cooldown: a verifier (default settings) that fetched the JWKS just before the rotate accepts the first token of the new key', async (t) => {
  assert.equal(ACTIVATE_DELAY_MS, JWKS_REFETCH_COOLDOWN_MS + ACTIVATE_MARGIN_MS)
  assert.ok(ACTIVATE_MARGIN_MS >= 10_000, 'some margin for clock skew and a slow fetch')
  const dir = mkdtempSync(join(tmpdir(), 'weft-jwt-cooldown-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const clock = new FakeClock(Date.now())
  const svc = await JwtService.open(dir, 'weft.local', undefined, silentLogger, { now: clock.now })
  const server = await startJwksServer((await svc.jwks()).keys)
  t.after(() => server.close())
  const jwks = new JwksRegistry({ now: clock.now })
  t.after(() => jwks.close())
  const authn = authenticatorOf([{ issuer: ISS, jwksUri: server.url }], jwks, clock)
  const token = async () => (await svc.sign(CHECKOUT, { audience: 'payments' })).token

  assert.equal((await authn.authenticate(bearer(await token()))).kind, 'ok')
  assert.equal(server.requests.length, 1)
  // The cache's cooldown is JWKS_REFETCH_COOLDOWN_MS: an unknown kid fetches again only from then.
  const stranger = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
  const strangeToken = (await stranger.sign({ subject: CHECKOUT, audience: 'payments' })).token
  clock.advance(JWKS_REFETCH_COOLDOWN_MS - 1)
  assert.equal((await authn.authenticate(bearer(strangeToken))).kind, 'invalid')
  assert.equal(server.requests.length, 1, 'within the cooldown: no fetch')
  clock.advance(-(JWKS_REFETCH_COOLDOWN_MS - 1))

  // Worst case: the rotate right after the verifier's fetch.
  const rotated = await svc.rotate()
  server.keys = (await svc.jwks()).keys
  const pre = await token()
  assert.equal(kidOf(pre), rotated.previousKid)
  assert.equal((await authn.authenticate(bearer(pre))).kind, 'ok', 'before the activation: the old kid, known to the cached set')
  clock.advance(ACTIVATE_DELAY_MS)
  const first = await token()
  assert.equal(kidOf(first), rotated.kid)
  const r = await authn.authenticate(bearer(first))
  assert.equal(r.kind, 'ok', `the first token of the new key: ${JSON.stringify(r)}`)
  assert.equal(server.requests.length, 2, 'fetched again on the new kid')
  assert.equal((await authn.authenticate(bearer(pre))).kind, 'ok', 'and the old key\'s tokens still verify')
})

test('a single-key jwt-key.json of before loads as a one-key set and rotates; so does the first cut\'s mid-rotation file (old key public only: the new key signs); an unreadable set stops the start with its name', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-jwt-legacy-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'ca'), { mode: 0o700 })
  const legacy = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
  writeFileSync(join(dir, 'ca', 'jwt-key.json'), JSON.stringify(legacy.toJwk()) + '\n', { mode: 0o600 })
  const d = await daemon(t, dir)
  assert.deepEqual((await jwksOf(d)).keys, legacy.jwks().keys)
  const inst = await register(d, { service: 'checkout' })
  const token = await tokenFrom(d, inst)
  assert.equal(kidOf(token), legacy.kid)
  await jwtVerify(token, createLocalJWKSet(legacy.jwks()), { issuer: ISS, audience: 'payments' })
  const rotated = await call(d.url, 'POST', '/v1/jwt/rotate', d.adminToken)
  assert.equal(rotated.body.previousKid, legacy.kid)
  await d.daemon.close()

  const firstCut = mkdtempSync(join(tmpdir(), 'weft-jwt-first-cut-'))
  t.after(() => rmSync(firstCut, { recursive: true, force: true }))
  mkdirSync(join(firstCut, 'ca'), { mode: 0o700 })
  const next = await JwtSvidIssuer.create({ trustDomain: 'weft.local' })
  const rotatedAt = new Date().toISOString()
  writeFileSync(join(firstCut, 'ca', 'jwt-key.json'), JSON.stringify({ current: next.toJwk(), previous: legacy.publicKey(), rotatedAt }), { mode: 0o600 })
  const f = await daemon(t, firstCut)
  assert.deepEqual((await jwksOf(f)).keys.map((k) => k.kid), [next.kid, legacy.kid])
  assert.equal(kidOf(await tokenFrom(f, await register(f, { service: 'checkout' }))), next.kid, 'no private part of the old key: the new one signs')
  const v = (await call(f.url, 'GET', '/v1/jwt/keys', f.adminToken)).body
  assert.deepEqual([v.signingKid, v.activatesAt, Date.parse(v.retireAfter) - Date.parse(rotatedAt)], [next.kid, rotatedAt, 330_000])

  const broken = mkdtempSync(join(tmpdir(), 'weft-jwt-broken-'))
  t.after(() => rmSync(broken, { recursive: true, force: true }))
  mkdirSync(join(broken, 'ca'), { mode: 0o700 })
  writeFileSync(join(broken, 'ca', 'jwt-key.json'), JSON.stringify({ current: legacy.toJwk(), previous: legacy.toJwk(), rotatedAt: new Date().toISOString() }), { mode: 0o600 })
  await assert.rejects(startTestDaemon({ dataDir: broken }), /jwt-key\.json is not a readable JWT-SVID key set \(its previous key is its current key\)/)
})
