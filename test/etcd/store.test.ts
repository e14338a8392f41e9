// The etcd store against a real etcd on loopback (test/helpers/etcd.ts): one etcd for the file,
// a fresh key prefix per test. Waits are polls with a deadline, never fixed timings, except where
// a test must show that something did NOT happen within a lease's TTL.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { EventEmitter } from 'node:events'
import { createRequire } from 'node:module'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createEtcdStore, type EtcdStore, type EtcdStoreOptions } from '../../adapters/etcd/etcd-store.js'
import { ConflictError, type InstanceRecord, type StoreEvent, type StoredResource } from '../../src/daemon/store.js'
import { startEtcd, type TestEtcd } from '../helpers/etcd.js'
import type { Etcd3 } from 'etcd3'

let etcd: TestEtcd
const stores: EtcdStore[] = []
const raws: Etcd3[] = []

before(async () => {
  etcd = await startEtcd()
})

after(async () => {
  await Promise.allSettled(stores.map((s) => s.close()))
  for (const r of raws) r.close()
  await etcd?.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function newPrefix(): string {
  return `/t-${randomUUID().slice(0, 8)}/`
}

/** An open store that records its events; closed after the file. */
async function openStore(prefix: string, opts: Partial<EtcdStoreOptions> = {}): Promise<EtcdStore & { events: StoreEvent[] }> {
  const store = createEtcdStore({ endpoints: [etcd.endpoint], prefix, ...opts }) as EtcdStore & { events: StoreEvent[] }
  store.events = []
  store.onEvent((e) => store.events.push(e))
  await store.open()
  stores.push(store)
  return store
}

/** A plain etcd3 client on the test etcd, to look at keys and leases behind the store's back. */
async function rawClient(): Promise<Etcd3> {
  const { Etcd3 } = createRequire(import.meta.url)('etcd3') as typeof import('etcd3')
  const c = new Etcd3({ hosts: [etcd.endpoint] })
  raws.push(c)
  return c
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

function resource(name: string, extra: object = {}): StoredResource {
  return { kind: 'Service', namespace: 'default', name, value: { apiVersion: 'weft/v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { ...extra } } }
}

function instance(id: string, service = 'payments', port = 8080): InstanceRecord {
  return {
    id,
    service,
    namespace: 'default',
    address: '127.0.0.1',
    port,
    protocol: 'http',
    labels: { version: 'v1' },
    tokenHash: 'a'.repeat(64),
    joinHash: 'b'.repeat(64),
    registeredAt: new Date().toISOString(),
  }
}

const policyEvent = (s: { events: StoreEvent[] }, version: number) =>
  s.events.find((e): e is Extract<StoreEvent, { type: 'policy' }> => e.type === 'policy' && e.state.version === version)
const putEvent = (s: { events: StoreEvent[] }, id: string) =>
  s.events.find((e): e is Extract<StoreEvent, { type: 'instances' }> => e.type === 'instances' && e.put.some((r) => r.id === id))
const deleteEvent = (s: { events: StoreEvent[] }, id: string) =>
  s.events.find((e): e is Extract<StoreEvent, { type: 'instances' }> => e.type === 'instances' && e.deleted.includes(id))

test('policy round trip: the version is the etcd revision of the write, and the write comes back as an event', async () => {
  const a = await openStore(newPrefix())
  assert.deepEqual(await a.readPolicy(), { version: 0, resources: [] })
  const before = a.revision()
  assert.ok(before > 0, 'revision() is etcd revision after open')

  const v1 = await a.writePolicy([resource('payments', { timeout: '2s' })], { action: 'apply', summary: 'created Service/payments' }, 0)
  assert.ok(v1 > before)
  const read = await a.readPolicy()
  assert.equal(read.version, v1)
  assert.deepEqual(read.resources, [resource('payments', { timeout: '2s' })])

  const ev = await waitFor('the policy event', () => policyEvent(a, v1))
  assert.equal(ev.revision, v1)
  assert.deepEqual(ev.state.resources, read.resources)
  assert.equal(a.revision(), v1, 'revision() reached the write once its event arrived')
})

test('writePolicy is a compare-and-swap on the version: a stale or wrong expectation is a ConflictError', async () => {
  const a = await openStore(newPrefix())
  const v1 = await a.writePolicy([resource('a')], { action: 'apply', summary: 'one' }, 0)
  await assert.rejects(a.writePolicy([resource('b')], { action: 'apply', summary: 'two' }, 0), (err: unknown) => {
    assert.ok(err instanceof ConflictError)
    assert.equal(err.expected, 0)
    assert.equal(err.actual, v1)
    return true
  })
  const v2 = await a.writePolicy([resource('b')], { action: 'apply', summary: 'two' }, v1)
  await assert.rejects(a.writePolicy([resource('c')], { action: 'apply', summary: 'three' }, v1), (err: unknown) => err instanceof ConflictError && err.actual === v2)
  assert.equal((await a.readPolicy()).version, v2)
  assert.deepEqual((await a.readPolicy()).resources, [resource('b')])
})

test('two writers racing on one version: exactly one wins', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  const results = await Promise.allSettled([
    a.writePolicy([resource('from-a')], { action: 'apply', summary: 'a' }, 0),
    b.writePolicy([resource('from-b')], { action: 'apply', summary: 'b' }, 0),
  ])
  const won = results.filter((r) => r.status === 'fulfilled')
  const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  assert.equal(won.length, 1)
  assert.equal(lost.length, 1)
  assert.ok(lost[0]!.reason instanceof ConflictError)
  assert.equal((await a.history()).length, 1)
})

test('history is newest first with each write\'s action and summary; policyAt gives any kept version', async () => {
  const a = await openStore(newPrefix())
  const v1 = await a.writePolicy([resource('a')], { action: 'apply', summary: 'created Service/a' }, 0)
  const v2 = await a.writePolicy([resource('a'), resource('b')], { action: 'apply', summary: 'created Service/b' }, v1)
  const v3 = await a.writePolicy([resource('a')], { action: 'delete', summary: 'deleted Service/b' }, v2)
  const v4 = await a.writePolicy([resource('a'), resource('b')], { action: 'rollback', summary: `rolled back to ${v2}` }, v3)

  const h = await a.history()
  assert.deepEqual(h.map((e) => [e.version, e.action, e.summary]), [
    [v4, 'rollback', `rolled back to ${v2}`],
    [v3, 'delete', 'deleted Service/b'],
    [v2, 'apply', 'created Service/b'],
    [v1, 'apply', 'created Service/a'],
  ])
  for (const e of h) assert.ok(!Number.isNaN(Date.parse(e.at)), `an ISO time: ${e.at}`)
  assert.deepEqual((await a.history(2)).map((e) => e.version), [v4, v3])
  assert.deepEqual((await a.history(1)).map((e) => e.version), [v4])
  assert.deepEqual(await a.history(0), [])

  assert.deepEqual(await a.policyAt(v1), [resource('a')])
  assert.deepEqual(await a.policyAt(v2), [resource('a'), resource('b')])
  assert.deepEqual(await a.policyAt(v3), [resource('a')])
  assert.deepEqual(await a.policyAt(v4), [resource('a'), resource('b')])
  assert.equal(await a.policyAt(v4 + 1000), undefined)
  assert.equal(await a.policyAt(v1 - 1), undefined)
})

test('history keeps the last 100 versions', async () => {
  const a = await openStore(newPrefix())
  const versions: number[] = []
  let v = 0
  for (let i = 0; i < 105; i++) {
    v = await a.writePolicy([resource(`s${i}`)], { action: 'apply', summary: `write ${i}` }, v)
    versions.push(v)
  }
  const h = await a.history()
  assert.equal(h.length, 100)
  assert.deepEqual(h.map((e) => e.version), versions.slice(5).reverse())
  assert.equal(await a.policyAt(versions[4]!), undefined, 'the 5th write was pruned')
  assert.deepEqual(await a.policyAt(versions[5]!), [resource('s5')])
})

test('two stores on one etcd: a policy write through A arrives at B with the same revision', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  const v1 = await a.writePolicy([resource('payments')], { action: 'apply', summary: 'created Service/payments' }, 0)
  const atB = await waitFor('the policy event at B', () => policyEvent(b, v1))
  assert.equal(atB.revision, v1)
  assert.deepEqual(atB.state.resources, [resource('payments')])
  assert.equal(b.revision(), v1)
  // The action that wrote the version rides along (the hub tells a DELETE from a dropped resource: RELIABILITY F5).
  assert.equal(atB.state.action, 'apply')
  assert.deepEqual(await b.readPolicy(), { version: v1, resources: [resource('payments')], action: 'apply' })
  // B writes on top of A's version; A sees it.
  const v2 = await b.writePolicy([], { action: 'delete', summary: 'deleted Service/payments' }, v1)
  const atA = await waitFor('the policy event at A', () => policyEvent(a, v2))
  assert.equal(atA.revision, v2)
  assert.deepEqual(atA.state.resources, [])
  assert.equal(atA.state.action, 'delete')
  assert.equal((await a.readPolicy()).action, 'delete')
  // Revisions of one store's events increase.
  const revs = a.events.map((e) => e.revision)
  assert.deepEqual(revs, [...revs].sort((x, y) => x - y))
})

test('an instance attached on A is listed by B, reported to both as a put, and deleted everywhere', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  const rec = instance('payments-1')
  await a.attachInstance(rec)
  assert.deepEqual(await b.getInstance('payments-1'), rec)
  assert.deepEqual(await b.listInstances(), [rec])
  const evA = await waitFor('the put at A (its own write)', () => putEvent(a, 'payments-1'))
  const evB = await waitFor('the put at B', () => putEvent(b, 'payments-1'))
  assert.equal(evA.revision, evB.revision)
  assert.deepEqual(evB.put, [rec])
  assert.equal(b.revision(), evB.revision)

  // Attaching the same record again changes nothing anyone needs to hear about.
  await a.attachInstance(rec)
  const changed = { ...rec, port: 9090 }
  await a.attachInstance(changed)
  await waitFor('the changed record at B', () => b.events.find((e) => e.type === 'instances' && e.put.some((r) => r.port === 9090)))
  assert.equal(b.events.filter((e) => putEvent({ events: [e] }, 'payments-1')).length, 2, 'the unchanged re-attach was not reported')

  await b.deleteInstance('payments-1')
  await waitFor('the delete at A', () => deleteEvent(a, 'payments-1'))
  assert.equal(await a.getInstance('payments-1'), undefined)
  assert.deepEqual(await a.listInstances(), [])
})

test('a detached instance expires after its TTL; attached again before that, it stays', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  await a.attachInstance(instance('gone-1'))
  await a.attachInstance(instance('kept-1'))
  await a.detachInstance('gone-1', 2000)
  await a.detachInstance('kept-1', 2000)
  await a.attachInstance(instance('kept-1'))
  const detachedAt = Date.now()

  await waitFor('gone-1 to expire', async () => (await b.getInstance('gone-1')) === undefined || undefined)
  await waitFor('the delete event at B', () => deleteEvent(b, 'gone-1'))
  await waitFor('the delete event at A', () => deleteEvent(a, 'gone-1'))
  assert.ok(Date.now() - detachedAt >= 1500, 'not before its TTL')
  // kept-1 was on the same 2 s lease before it was attached again; that lease has expired now.
  await sleep(Math.max(0, detachedAt + 3000 - Date.now()))
  assert.ok(await b.getInstance('kept-1'))
  assert.equal(deleteEvent(b, 'kept-1'), undefined)
})

test('a detach by a daemon that no longer holds the instance leaves it with the daemon that does', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  await a.attachInstance(instance('moved-1'))
  await b.attachInstance(instance('moved-1')) // the instance's stream moved to B
  await a.detachInstance('moved-1', 2000) // A notices its old stream closed
  await b.detachInstance('never-attached', 2000) // unknown id: nothing to do
  await sleep(3000)
  assert.ok(await a.getInstance('moved-1'), 'still held by B after the TTL A asked for')
})

test('a closed store (no revoke) loses its instances after the lease TTL; revokeLease removes them at once', async () => {
  const prefix = newPrefix()
  const b = await openStore(prefix)
  const a = await openStore(prefix, { leaseTtlMs: 2000 })
  const c = await openStore(prefix, { leaseTtlMs: 60_000 })
  await a.attachInstance(instance('on-a'))
  await c.attachInstance(instance('on-c'))
  await waitFor('both at B', async () => (await b.listInstances()).length === 2 || undefined)

  const closedAt = Date.now()
  await a.close()
  await c.close({ revokeLease: true })
  await waitFor('on-c removed by the revoke', async () => (await b.getInstance('on-c')) === undefined || undefined, 2000)
  await waitFor('on-a expired', async () => (await b.getInstance('on-a')) === undefined || undefined)
  assert.ok(Date.now() - closedAt >= 1000, 'on-a stayed until its lease ran out')
  await waitFor('the delete event at B', () => deleteEvent(b, 'on-a'))
})

test('a daemon process killed outright: its instances vanish after the lease TTL', async () => {
  const prefix = newPrefix()
  const b = await openStore(prefix)
  const storeModule = fileURLToPath(new URL('../../adapters/etcd/etcd-store.ts', import.meta.url))
  const script = `
    const { createEtcdStore } = await import(${JSON.stringify(storeModule)})
    const s = createEtcdStore({ endpoints: [${JSON.stringify(etcd.endpoint)}], prefix: ${JSON.stringify(prefix)}, leaseTtlMs: 2000 })
    await s.open()
    await s.attachInstance(${JSON.stringify(instance('crash-1'))})
    console.log('attached')
    setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  const killTimer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => String(d).includes('attached') && resolve())
      child.once('exit', (code) => reject(new Error(`child exited (${code}) before attaching: ${stderr}`)))
    })
    await waitFor('crash-1 at B', () => putEvent(b, 'crash-1'))
    // Well past the 2 s TTL's keepalive interval: the lease is being kept alive.
    await sleep(2500)
    assert.ok(await b.getInstance('crash-1'), 'alive while the process lives')
    const killedAt = Date.now()
    child.kill('SIGKILL')
    await waitFor('crash-1 to expire', () => deleteEvent(b, 'crash-1'))
    assert.ok(Date.now() - killedAt >= 500, 'not at once: when the lease ran out')
    assert.equal(await b.getInstance('crash-1'), undefined)
  } finally {
    clearTimeout(killTimer)
    child.kill('SIGKILL')
  }
})

test('a lease lost behind the store\'s back (as after etcd was out of reach past the TTL): a new one is granted and the attached instances put back', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix, { leaseTtlMs: 2000 })
  const b = await openStore(prefix)
  await a.attachInstance(instance('held-1'))
  await a.attachInstance(instance('held-2'))
  await a.attachInstance(instance('let-go'))
  await a.detachInstance('let-go', 60_000)
  const raw = await rawClient()
  const lease = (await raw.get(`${prefix}instances/held-1`).exec()).kvs[0]!.lease
  await raw.leaseClient.leaseRevoke({ ID: lease })
  await waitFor('the deletes at B', () => deleteEvent(b, 'held-1') && deleteEvent(b, 'held-2'))
  await waitFor('held-1 and held-2 back', async () => (await b.getInstance('held-1')) && (await b.getInstance('held-2')))
  const after = (await raw.get(`${prefix}instances/held-1`).exec()).kvs[0]!.lease
  assert.notEqual(after, lease)
  assert.ok(await b.getInstance('let-go'), 'the detached one was on its own lease')
  // The new lease is kept alive: still there well past its TTL, and A can attach more on it.
  await sleep(2500)
  assert.ok(await b.getInstance('held-1'))
  await a.attachInstance(instance('held-3'))
  assert.equal((await raw.get(`${prefix}instances/held-3`).exec()).kvs[0]!.lease, after)
})

test('a watch canceled by etcd (simulated): the store reads the state again, reports the difference, and watches on', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  await b.attachInstance(instance('stays'))
  await b.attachInstance(instance('leaves'))
  await waitFor('both at A', () => putEvent(a, 'stays') && putEvent(a, 'leaves'))
  // Stop A's watch as etcd would (it cannot replay past a compaction), change things meanwhile,
  // then tell A its watch was canceled.
  const internals = a as unknown as { feed: { watcher: EventEmitter & { cancel(): Promise<void> } } }
  const w = internals.feed.watcher
  await w.cancel()
  const v = await b.writePolicy([resource('new')], { action: 'apply', summary: 'new' }, 0)
  await b.attachInstance(instance('arrives'))
  await b.deleteInstance('leaves')
  const seen = a.events.length
  w.emit('error', new Error('simulated: watch canceled, required revision has been compacted'))
  const p = await waitFor('the policy event after resync', () => a.events.slice(seen).find((e) => e.type === 'policy'))
  assert.ok(p.type === 'policy' && p.state.version === v && p.revision >= v)
  const i = await waitFor('the instances event after resync', () => a.events.slice(seen).find((e) => e.type === 'instances'))
  assert.ok(i.type === 'instances')
  assert.deepEqual(i.put.map((r) => r.id), ['arrives'])
  assert.deepEqual(i.deleted, ['leaves'])
  // Watching again.
  await b.attachInstance(instance('later'))
  await waitFor('a change after the resync', () => putEvent(a, 'later'))
})

test('join tokens and the admin token hash round trip, shared by every store', async () => {
  const prefix = newPrefix()
  const a = await openStore(prefix)
  const b = await openStore(prefix)
  assert.equal(await a.adminTokenHash(), undefined)
  // Create-only: of two stores setting it at once, one wins and both get the winner's hash.
  const [x, y] = await Promise.all([a.createAdminTokenHash('c'.repeat(64)), b.createAdminTokenHash('9'.repeat(64))])
  assert.equal(x, y)
  assert.ok(x === 'c'.repeat(64) || x === '9'.repeat(64))
  assert.equal(await b.adminTokenHash(), x)
  assert.equal(await a.createAdminTokenHash('8'.repeat(64)), x)

  const t = { hash: 'd'.repeat(64), services: ['payments'], namespace: 'default', createdAt: new Date().toISOString() }
  const any = { hash: 'e'.repeat(64), services: ['*'], createdAt: new Date().toISOString() }
  await a.addJoinToken(t)
  await b.addJoinToken(any)
  assert.deepEqual(await b.findJoinToken(t.hash), t)
  assert.deepEqual(await a.findJoinToken(any.hash), any)
  assert.equal(await a.findJoinToken('f'.repeat(64)), undefined)
})

test('stores under different prefixes do not see each other', async () => {
  const a = await openStore(newPrefix())
  const b = await openStore(newPrefix())
  await a.attachInstance(instance('only-a'))
  const v = await a.writePolicy([resource('x')], { action: 'apply', summary: 'x' }, 0)
  await waitFor('A\'s own policy event', () => policyEvent(a, v))
  assert.deepEqual(await b.listInstances(), [])
  assert.deepEqual(await b.readPolicy(), { version: 0, resources: [] })
  assert.deepEqual(b.events, [])
})

test('open fails with a clear error when etcd is not reachable, within the request timeout', async () => {
  const store = createEtcdStore({ endpoints: ['http://127.0.0.1:1'], requestTimeoutMs: 1000 })
  const t0 = Date.now()
  await assert.rejects(store.open(), /etcd store: cannot open http:\/\/127\.0\.0\.1:1/)
  assert.ok(Date.now() - t0 < 15_000)
  await assert.rejects(store.readPolicy(), /etcd store is closed/)
})

test('bad options are refused up front', () => {
  assert.throws(() => createEtcdStore({ endpoints: [] }), /invalid option endpoints/)
  assert.throws(() => createEtcdStore({ endpoints: ['https://127.0.0.1:2379'] }), /TLS/)
  assert.throws(() => createEtcdStore({ endpoints: ['http://127.0.0.1:2379'], prefix: '/weft' }), /invalid option prefix/)
  assert.throws(() => createEtcdStore({ endpoints: ['http://127.0.0.1:2379'], leaseTtlMs: 0 }), /invalid option leaseTtlMs/)
})
