// Daemons on one real etcd are one CA and one JWT issuer: the CA's state and the JWT-SVID key are
// made once (create-only) by whichever daemon comes first and adopted by the others; a rotation
// through one daemon is a compare-and-set that the others follow and push to their own streams.
// One etcd for the file, a fresh key prefix per test.
import assert from 'node:assert/strict'
import { X509Certificate, randomUUID } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test, type TestContext } from 'node:test'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { request } from 'undici'
import { createEtcdStore, type EtcdStore } from '../../adapters/etcd/etcd-store.js'
import type { WatchMessage } from '../../src/control/protocol.js'
import { type Daemon, type DaemonOptions } from '../../src/daemon/index.js'
import type { SharedDocVersion } from '../../src/daemon/store.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { createCsr, generateKeyPair } from '../../src/identity/keys.js'
import { workloadId } from '../../src/identity/spiffe-id.js'
import { call, eventually, startTestDaemon, WatchStream } from '../helpers/daemon.js'
import { dataDirs, etcdDaemonStarter, newEtcdPrefix } from '../helpers/etcd-daemons.js'
import { startEtcd, type TestEtcd } from '../helpers/etcd.js'

let etcd: TestEtcd

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  await etcd?.stop()
})

interface Pair {
  A: Daemon
  B: Daemon
  dirs: string[]
  admin: string
  join: string
  prefix: string
  start(dir: string, extra?: Partial<DaemonOptions>): Promise<Daemon>
}

/** Starts daemons on the prefix (coalescing 5 ms); see helpers/etcd-daemons.ts. */
const starter = (t: TestContext, prefix: string, dirs: string[], extra: Partial<DaemonOptions> = {}) => etcdDaemonStarter(t, etcd.endpoint, prefix, dirs, { coalesceMs: 5, ...extra })
const newPrefix = newEtcdPrefix

/** Two daemons started at once on a fresh prefix: both race to make the CA and the JWT key. */
async function twoDaemons(t: TestContext, extra: Partial<DaemonOptions> = {}): Promise<Pair> {
  const prefix = newPrefix()
  const dirs = dataDirs(2, 'shared-ca')
  const start = starter(t, prefix, dirs, extra)
  const [A, B] = await Promise.all(dirs.map((d) => start(d)))
  const winner = dirs.find((d) => existsSync(join(d, 'admin.token')))!
  const read = (f: string) => readFileSync(join(winner, f), 'utf8').trim()
  return { A: A!, B: B!, dirs, admin: read('admin.token'), join: read('join.token'), prefix, start }
}

async function register(url: string, joinToken: string, service: string): Promise<{ id: string; token: string }> {
  const r = await call(url, 'POST', '/v1/register', joinToken, { service })
  assert.equal(r.status, 201, JSON.stringify(r.body))
  return r.body
}

/** A watch stream opened as an mTLS instance opens it (?bundle=1), answering pings. */
async function openBundleWatch(url: string, id: string, token: string): Promise<WatchStream> {
  const ac = new AbortController()
  const res = await request(`${url}/v1/instances/${encodeURIComponent(id)}/watch?bundle=1`, { headers: { authorization: `Bearer ${token}` }, signal: ac.signal, headersTimeout: 10_000, bodyTimeout: 0 })
  const body = res.body as unknown as ConstructorParameters<typeof WatchStream>[2]
  body.on('error', () => {})
  return new WatchStream(res.statusCode, ac, body, () => void call(url, 'POST', `/v1/instances/${encodeURIComponent(id)}/heartbeat`, token, {}).catch(() => {}))
}

async function bundleMessage(w: WatchStream, minSequence: number, timeoutMs = 5000): Promise<Extract<WatchMessage, { type: 'bundle' }>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = await w.next(Math.max(1, deadline - Date.now()))
    if (m.type === 'bundle' && m.bundle.sequence >= minSequence) return m
  }
}

test('two daemons started together on an empty etcd serve one bundle and one JWKS, and keep no CA files', async (t) => {
  const { A, B, dirs, admin } = await twoDaemons(t)
  const [ba, bb] = await Promise.all([A, B].map((d) => call(d.url, 'GET', '/v1/bundle', admin)))
  assert.equal(ba!.status, 200)
  assert.deepEqual(bb!.body, ba!.body)
  assert.equal(ba!.body.roots.length, 1)
  const [ja, jb] = await Promise.all([A, B].map((d) => call(d.url, 'GET', '/v1/jwks')))
  assert.equal(ja!.body.keys.length, 1)
  assert.deepEqual(jb!.body, ja!.body)
  for (const d of dirs) {
    assert.equal(existsSync(join(d, 'ca', 'ca.json')), false, 'the CA is in etcd, not in the data dir')
    assert.equal(existsSync(join(d, 'ca', 'jwt-key.json')), false)
  }
})

test('instances registered on different daemons get SVIDs that chain to the same root', async (t) => {
  const { A, B, admin, join: joinToken } = await twoDaemons(t)
  const roots = ((await call(B.url, 'GET', '/v1/bundle', admin)).body.roots as string[]).map((p) => new X509Certificate(p))
  for (const [d, service] of [[A, 'payments'], [B, 'checkout']] as const) {
    const inst = await register(d.url, joinToken, service)
    const csr = await createCsr(await generateKeyPair(), workloadId('weft.local', 'default', service))
    const r = await call(d.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr })
    assert.equal(r.status, 200, JSON.stringify(r.body))
    const leaf = new X509Certificate(r.body.certChain[0])
    assert.equal(leaf.subjectAltName, `URI:spiffe://weft.local/ns/default/sa/${service}`)
    assert.ok(roots.some((root) => leaf.checkIssued(root) && leaf.verify(root.publicKey)), `${service}'s SVID (from ${d.url}) chains to the shared root`)
  }
})

test('a rotation through one daemon reaches the other: its bundle, its watch streams, a daemon started later', async (t) => {
  const pair = await twoDaemons(t)
  const { A, B, admin, join: joinToken } = pair
  const inst = await register(B.url, joinToken, 'payments')
  const w = await openBundleWatch(B.url, inst.id, inst.token)
  t.after(() => w.close())
  assert.equal(w.status, 200)
  const first = await bundleMessage(w, 0)
  const rotated = await call(A.url, 'POST', '/v1/ca/rotate', admin)
  assert.equal(rotated.status, 200, JSON.stringify(rotated.body))
  assert.equal(rotated.body.bundle.roots.length, 2)
  assert.ok(rotated.body.bundle.sequence > first.bundle.sequence)
  const pushed = await bundleMessage(w, rotated.body.bundle.sequence)
  assert.deepEqual(pushed.bundle, rotated.body.bundle, 'the stream on B got the bundle rotated through A')
  assert.deepEqual((await call(B.url, 'GET', '/v1/bundle', admin)).body, rotated.body.bundle)
  // B signs with the new root now.
  const csr = await createCsr(await generateKeyPair(), workloadId('weft.local', 'default', 'payments'))
  const svid = await call(B.url, 'POST', `/v1/instances/${inst.id}/svid`, inst.token, { csr })
  const newRoot = new X509Certificate(rotated.body.bundle.roots[1])
  assert.ok(new X509Certificate(svid.body.certChain[0]).verify(newRoot.publicKey), 'B signs with the root added through A')
  // Retire through B: A follows.
  const retired = await call(B.url, 'POST', '/v1/ca/retire', admin)
  assert.equal(retired.status, 200, JSON.stringify(retired.body))
  await eventually(async () => (await call(A.url, 'GET', '/v1/bundle', admin)).body.sequence === retired.body.bundle.sequence, 5000, 'A serves the bundle retired through B')
  assert.deepEqual((await call(A.url, 'GET', '/v1/bundle', admin)).body.roots, [newRoot.toString()])
  // A daemon started now loads the state from etcd.
  const dir = mkdtempSync(join(tmpdir(), 'weft-shared-ca-'))
  pair.dirs.push(dir)
  const C = await pair.start(dir)
  assert.deepEqual((await call(C.url, 'GET', '/v1/bundle', admin)).body, retired.body.bundle)
})

test('two rotations at once through two daemons: exactly one wins, the other is a 409 conflict', async (t) => {
  const { A, B, admin } = await twoDaemons(t)
  const answers = await Promise.all([A, B].map((d) => call(d.url, 'POST', '/v1/ca/rotate', admin)))
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 409], JSON.stringify(answers.map((a) => a.body)))
  const lost = answers.find((a) => a.status === 409)!
  assert.equal(lost.body.error.code, 'WEFT_ERR_CONFLICT')
  const won = answers.find((a) => a.status === 200)!
  for (const d of [A, B]) {
    await eventually(async () => JSON.stringify((await call(d.url, 'GET', '/v1/bundle', admin)).body) === JSON.stringify(won.body.bundle), 5000, `${d.url} serves the winning rotation`)
  }
})

test('a JWT-SVID signed through one daemon verifies with the other daemon\'s JWKS', async (t) => {
  const { A, B, join: joinToken } = await twoDaemons(t)
  const inst = await register(A.url, joinToken, 'payments')
  const r = await call(A.url, 'POST', `/v1/instances/${inst.id}/jwt-svid`, inst.token, { audience: 'orders' })
  assert.equal(r.status, 200, JSON.stringify(r.body))
  const jwks = (await call(B.url, 'GET', '/v1/jwks')).body
  const { payload } = await jwtVerify(r.body.token, createLocalJWKSet(jwks), { audience: 'orders', issuer: 'spiffe://weft.local' })
  assert.equal(payload.sub, 'spiffe://weft.local/ns/default/sa/payments')
})

test('the store\'s shared documents: create-only and compare-and-set let one of two writers win; a watch sees the other store\'s write', async (t) => {
  const prefix = `/t-${randomUUID().slice(0, 8)}/`
  const stores: EtcdStore[] = [0, 1].map(() => createEtcdStore({ endpoints: [etcd.endpoint], prefix }))
  t.after(() => Promise.allSettled(stores.map((s) => s.close())))
  await Promise.all(stores.map((s) => s.open()))
  const [d1, d2] = stores.map((s) => s.sharedDoc('ca'))
  const made = await Promise.all([d1!.createIfAbsent('one'), d2!.createIfAbsent('two')])
  assert.deepEqual(made.map((m) => m.created).sort(), [false, true])
  assert.equal(made[0]!.value, made[1]!.value, 'the loser adopts the winner\'s value')
  assert.equal(made[0]!.revision, made[1]!.revision)
  const seen: SharedDocVersion[] = []
  await d2!.watch(made[0]!.revision, (v) => seen.push(v))
  const base = made[0]!.revision
  const cas = await Promise.all([d1!.compareAndSet('three', base), d2!.compareAndSet('four', base)])
  assert.equal(cas.filter((r) => r === undefined).length, 1, 'exactly one compare-and-set wins')
  const rev = cas.find((r) => r !== undefined)!
  const now = await d1!.get()
  assert.equal(now?.revision, rev)
  await eventually(async () => seen.length === 1, 5000, 'the watch of the second store sees the write')
  assert.deepEqual(seen[0], now)
  assert.equal(await d1!.compareAndSet('five', base), undefined, 'a stale revision loses')
})

test('an operator CA on etcd: its key is never written there; daemons given the same CA serve one bundle sequence, which grows when the roots change', async (t) => {
  const rootA = (await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })).toPem()
  const rootB = (await CertificateAuthority.createRoot({ trustDomain: 'weft.local' })).toPem()
  const pair = await twoDaemons(t, { ca: { certPem: rootA.certPem, keyPem: rootA.keyPem } })
  const seqOf = async (d: Daemon) => (await call(d.url, 'GET', '/v1/bundle', pair.admin)).body as { sequence: number; roots: string[] }
  const a1 = await seqOf(pair.A)
  assert.deepEqual(await seqOf(pair.B), a1)
  // What etcd holds under the prefix: no private key of the operator's.
  const raw = createEtcdStore({ endpoints: [etcd.endpoint], prefix: pair.prefix })
  await raw.open()
  const stored = await raw.sharedDoc('ca-operator-bundle').get()
  assert.equal(await raw.sharedDoc('ca').get(), undefined, 'no CA state made')
  await raw.close()
  assert.ok(stored && !stored.value.includes('PRIVATE KEY'), 'only the bundle is stored')
  // The operator's rotation: every daemon restarted with the new CA and both roots.
  await Promise.all([pair.A.close(), pair.B.close()])
  const both = { ca: { certPem: rootB.certPem, keyPem: rootB.keyPem, bundlePem: rootA.certPem + rootB.certPem } }
  const [A2, B2] = await Promise.all(pair.dirs.map((d) => pair.start(d, both)))
  const a2 = await seqOf(A2!)
  assert.equal(a2.roots.length, 2)
  assert.equal(a2.sequence, a1.sequence + 1, 'new roots: one sequence higher, on both daemons')
  assert.deepEqual(await seqOf(B2!), a2)
})

test('daemons that had CAs of their own before sharing etcd: the first one\'s CA becomes the shared one, and the bundle sequence is raised above the others\' so their instances take it', async (t) => {
  // Two daemons that each made a CA in their data dir (the second rotated twice: sequence 3).
  const one = await startTestDaemon()
  const oneRoot = (await call(one.url, 'GET', '/v1/bundle', one.adminToken)).body.roots[0]
  await one.daemon.close()
  const two = await startTestDaemon()
  assert.equal((await call(two.url, 'POST', '/v1/ca/rotate', two.adminToken)).status, 200)
  const twoSeq = (await call(two.url, 'POST', '/v1/ca/retire', two.adminToken)).body.bundle.sequence as number
  await two.daemon.close()
  const dirs = [one.dataDir, two.dataDir]
  const start = starter(t, newPrefix(), dirs)
  const first = await start(dirs[0]!)
  const second = await start(dirs[1]!)
  const admin = readFileSync(join(dirs[0]!, 'admin.token'), 'utf8').trim()
  const [b1, b2] = await Promise.all([first, second].map(async (d) => (await call(d.url, 'GET', '/v1/bundle', admin)).body))
  assert.deepEqual(b1.roots, [oneRoot], 'the first daemon\'s CA is the shared one')
  assert.ok(b2.sequence > twoSeq, `sequence ${b2.sequence} above the second daemon's former ${twoSeq}`)
  assert.deepEqual(b1, b2)
})
