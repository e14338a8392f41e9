// A revocation on daemons sharing one real etcd (RELIABILITY M8): revoked through A, it is listed
// by B and B's CA refuses the identity's CSR naming it; lifted through B, A signs again.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Daemon } from '../../src/daemon/index.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
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

test('daemons on one etcd: a revocation through A is listed by B and B refuses the identity\'s CSR; lifted through B, A signs again', async (t) => {
  const prefix = newEtcdPrefix()
  const dirs = dataDirs(2, 'shared-revocation')
  const start = etcdDaemonStarter(t, etcd.endpoint, prefix, dirs)
  const A = await start(dirs[0]!)
  const B = await start(dirs[1]!)
  const admin = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dirs[0]!, 'join.token'), 'utf8').trim()
  const csrThrough = async (d: Daemon) => {
    const inst = await call(d.url, 'POST', '/v1/register', joinToken, { service: 'checkout' })
    assert.equal(inst.status, 201, JSON.stringify(inst.body))
    const csr = await createCsr(await generateKeyPair(), workloadId('weft.local', 'default', 'checkout'))
    return call(d.url, 'POST', `/v1/instances/${inst.body.id}/svid`, inst.body.token, { csr })
  }

  assert.equal((await call(A.url, 'POST', '/v1/revocations', admin, { service: 'checkout', reason: 'stolen laptop' })).status, 200)
  const listed = await eventually(async () => {
    const r = await call(B.url, 'GET', '/v1/revocations', admin)
    return r.body.revocations?.length === 1 ? r.body.revocations : undefined
  }, 10_000, 'B lists the revocation')
  assert.equal(listed[0].spiffeId, 'spiffe://weft.local/ns/default/sa/checkout')
  const refused = await csrThrough(B)
  assert.equal(refused.status, 403)
  assert.match(refused.body.error.message, /checkout is revoked \(reason: stolen laptop/)

  assert.equal((await call(B.url, 'DELETE', '/v1/revocations/default/checkout', admin)).status, 200)
  await eventually(async () => (await csrThrough(A)).status === 200, 10_000, 'A signs again')
})
