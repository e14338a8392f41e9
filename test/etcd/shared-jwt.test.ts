// JWT-SVID key rotation on daemons sharing one real etcd: a rotate through one daemon is published
// by the other's JWKS at once, while both keep signing with the old key; both switch to the new key
// at the activation they compute from the stored rotatedAt (moved into the past here, in etcd); a
// second rotate through the other is 409; a retire through the other reaches the first; a daemon
// started mid-rotation adopts both keys.
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import type { Daemon } from '../../src/daemon/index.js'
import { call, eventually } from '../helpers/daemon.js'
import { dataDirs, etcdDaemonStarter, newEtcdPrefix } from '../helpers/etcd-daemons.js'
import { startEtcd, type TestEtcd } from '../helpers/etcd.js'

let etcd: TestEtcd

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  await etcd?.stop()
})

test('daemons on one etcd: rotate through A, B publishes both keys at once; both sign with the new one from the stored activation; B cannot rotate again; B retires, A follows; a late daemon adopts the set', async (t) => {
  const prefix = newEtcdPrefix()
  const dirs = dataDirs(3, 'shared-jwt')
  const start = etcdDaemonStarter(t, etcd.endpoint, prefix, dirs)
  const A = await start(dirs[0]!)
  const B = await start(dirs[1]!)
  const admin = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dirs[0]!, 'join.token'), 'utf8').trim()
  const kids = async (d: Daemon) => ((await call(d.url, 'GET', '/v1/jwks')).body as { keys: { kid: string }[] }).keys.map((k) => k.kid)
  const tokenThrough = async (d: Daemon) => {
    const inst = await call(d.url, 'POST', '/v1/register', joinToken, { service: 'checkout' })
    assert.equal(inst.status, 201, JSON.stringify(inst.body))
    const r = await call(d.url, 'POST', `/v1/instances/${inst.body.id}/jwt-svid`, inst.body.token, { audience: 'orders' })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    return r.body.token as string
  }

  const [oldKid] = await kids(A)
  assert.deepEqual(await kids(B), [oldKid])
  const before = await tokenThrough(A)
  const rotated = await call(A.url, 'POST', '/v1/jwt/rotate', admin)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  const newKid = rotated.body.kid as string
  assert.deepEqual(await kids(B), [newKid, oldKid], 'B publishes the new key and the old')
  const viewOfB = (await call(B.url, 'GET', '/v1/jwt/keys', admin)).body
  assert.deepEqual([viewOfB.signingKid, viewOfB.activatesAt], [oldKid, rotated.body.activatesAt], 'the same activation on B')
  assert.equal(decodeProtectedHeader(await tokenThrough(B)).kid, oldKid, 'B signs with the old key until the activation')
  // The rotate moved 46 s into the past in etcd: both daemons follow the document and switch.
  const doc = A.store.sharedDoc!('jwt-key')
  const cur = (await doc.get())!
  const moved = { ...JSON.parse(cur.value), rotatedAt: new Date(Date.now() - 46_000).toISOString() }
  assert.ok((await doc.compareAndSet(JSON.stringify(moved), cur.revision)) !== undefined)
  await eventually(async () => decodeProtectedHeader(await tokenThrough(B)).kid === newKid, 5000, 'B signing with the new key')
  await eventually(async () => decodeProtectedHeader(await tokenThrough(A)).kid === newKid, 5000, 'A signing with the new key')
  const jwksOfB = (await call(B.url, 'GET', '/v1/jwks')).body
  await jwtVerify(before, createLocalJWKSet(jwksOfB), { issuer: 'spiffe://weft.local', audience: 'orders' })
  const again = await call(B.url, 'POST', '/v1/jwt/rotate', admin)
  assert.equal(again.status, 409)
  assert.match(again.body.error.message, /already under way/)

  // A daemon started now adopts the set mid-rotation, and keeps no key file of its own.
  const C = await start(dirs[2]!)
  assert.deepEqual(await kids(C), [newKid, oldKid])
  assert.equal(existsSync(join(dirs[2]!, 'ca', 'jwt-key.json')), false)

  const retired = await call(B.url, 'POST', '/v1/jwt/retire', admin, { force: true })
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  assert.deepEqual(await kids(A), [newKid], 'A publishes the new key alone')
  assert.deepEqual(await kids(C), [newKid])
  await assert.rejects(jwtVerify(before, createLocalJWKSet((await call(A.url, 'GET', '/v1/jwks')).body), { issuer: 'spiffe://weft.local', audience: 'orders' }), { code: 'ERR_JWKS_NO_MATCHING_KEY' })
  assert.equal(decodeProtectedHeader(await tokenThrough(A)).kid, newKid)
})
