import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { EmbeddedStore, HISTORY_KEPT } from '../../src/daemon/embedded-store.js'
import { ConflictError, type InstanceRecord, type StoreEvent } from '../../src/daemon/store.js'

const tmp = () => mkdtempSync(join(tmpdir(), 'weft-store-'))
const svc = (name: string) => ({ kind: 'Service', namespace: 'default', name, value: { apiVersion: 'weft/v1', kind: 'Service', metadata: { name } } })
const rec = (id: string, port = 8080): InstanceRecord => ({
  id, service: 'payments', namespace: 'default', address: '127.0.0.1', port, protocol: 'http', labels: {}, tokenHash: 'a'.repeat(64), joinHash: 'b'.repeat(64), registeredAt: new Date().toISOString(),
})

test('policy writes are compare-and-set on the version, recorded in history, and survive a reopen', async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  const events: StoreEvent[] = []
  s.onEvent((e) => events.push(e))
  const v1 = await s.writePolicy([svc('a')], { action: 'apply', summary: 'created Service/a' }, 0)
  await assert.rejects(s.writePolicy([svc('b')], { action: 'apply', summary: 'x' }, 0), (e: unknown) => e instanceof ConflictError && e.actual === v1)
  const v2 = await s.writePolicy([svc('a'), svc('b')], { action: 'apply', summary: 'created Service/b' }, v1)
  assert.ok(v2 > v1)
  assert.equal(s.revision(), v2)
  assert.deepEqual(events.map((e) => e.type), ['policy', 'policy'])
  assert.deepEqual((await s.policyAt(v1))?.map((r) => r.name), ['a'])
  await s.close()

  const again = new EmbeddedStore(dir)
  await again.open()
  const p = await again.readPolicy()
  assert.equal(p.version, v2)
  assert.deepEqual(p.resources.map((r) => r.name), ['a', 'b'])
  assert.equal(p.action, 'apply', 'the action that wrote it, from its history entry')
  assert.deepEqual((await again.history()).map((h) => h.version), [v2, v1])
  // The revision goes on above everything handed out before the restart.
  assert.ok(again.revision() > v2)
  await again.close()
  // No temp file is left behind by the writes.
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [])
})

test('a registry revision handed out before a crash is never reused after it', async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  for (let i = 0; i < 5; i++) await s.attachInstance(rec(`i${i}`, 8000 + i))
  const before = s.revision()
  // A crash: the disk as it is now, opened by a new process (the lock names a pid that no longer
  // holds it, so it is taken over), while nothing was written for the registry changes.
  const copy = tmp()
  cpSync(dir, copy, { recursive: true })
  await s.close()
  const after = new EmbeddedStore(copy)
  await after.open()
  assert.ok(after.revision() > before, `${after.revision()} > ${before}`)
  assert.deepEqual(await after.listInstances(), [], 'the registry is in memory')
  await after.close()
})

test('one store per data dir: a second open while the first is open is refused', async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  await assert.rejects(new EmbeddedStore(dir).open(), /in use/)
  await s.close()
  const again = new EmbeddedStore(dir)
  await again.open()
  await again.close()
})

test('a torn temp file left by a crash does not break open(), and is removed', async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  const v = await s.writePolicy([svc('a')], { action: 'apply', summary: 's' }, 0)
  await s.close()
  writeFileSync(join(dir, `.policy.json.4242.deadbeef.tmp`), '{"format":1,"version":9,"resour')
  writeFileSync(join(dir, 'history', `.${v + 1}.json.4242.deadbeef.tmp`), '{"vers')
  const again = new EmbeddedStore(dir)
  await again.open()
  assert.equal((await again.readPolicy()).version, v)
  assert.deepEqual((await again.history()).map((h) => h.version), [v])
  assert.deepEqual(readdirSync(dir).filter((n) => n.endsWith('.tmp')), [])
  assert.deepEqual(readdirSync(join(dir, 'history')).filter((n) => n.endsWith('.tmp')), [])
  await again.close()
})

test('a damaged policy.json stops open() with a message naming the file', async () => {
  const dir = tmp()
  writeFileSync(join(dir, 'policy.json'), '{"version": 3, "resources": [')
  await assert.rejects(new EmbeddedStore(dir).open(), /policy\.json/)
  writeFileSync(join(dir, 'policy.json'), '{"version": "x", "resources": []}')
  await assert.rejects(new EmbeddedStore(dir).open(), /not a weft policy file/)
})

test(`history keeps the last ${HISTORY_KEPT} versions`, async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  let v = 0
  for (let i = 0; i < HISTORY_KEPT + 3; i++) v = await s.writePolicy([svc(`s${i}`)], { action: 'apply', summary: `#${i}` }, v)
  const h = await s.history()
  assert.equal(h.length, HISTORY_KEPT)
  assert.equal(h[0]!.version, v)
  assert.equal(readdirSync(join(dir, 'history')).length, HISTORY_KEPT)
  assert.equal(await s.policyAt(h[HISTORY_KEPT - 1]!.version - 1), undefined, 'the oldest are gone')
  await s.close()
})

test('leases: an attached instance stays; detached, it expires after the TTL unless attached again', async () => {
  const s = new EmbeddedStore(tmp())
  await s.open()
  const events: StoreEvent[] = []
  s.onEvent((e) => events.push(e))
  const y = rec('y')
  await s.attachInstance(rec('x'))
  await s.attachInstance(y)
  await s.detachInstance('x', 50)
  await s.detachInstance('y', 50)
  await s.attachInstance({ ...y }) // reattached (the same record: no event)
  await new Promise((r) => setTimeout(r, 200))
  assert.deepEqual((await s.listInstances()).map((r) => r.id), ['y'])
  assert.deepEqual(events.map((e) => (e.type === 'instances' ? [...e.put.map((p) => `+${p.id}`), ...e.deleted.map((d) => `-${d}`)].join() : e.type)), ['+x', '+y', '-x'])
  // Revisions order every change.
  const revs = events.map((e) => e.revision)
  assert.deepEqual(revs, [...revs].sort((a, b) => a - b))
  await s.deleteInstance('y')
  assert.deepEqual(await s.listInstances(), [])
  await s.close()
})

test('join tokens and the admin hash (set once) persist in a 0600 file', async () => {
  const dir = tmp()
  const s = new EmbeddedStore(dir)
  await s.open()
  assert.equal(await s.createAdminTokenHash('c'.repeat(64)), 'c'.repeat(64))
  // Create-only: a second hash does not replace the first.
  assert.equal(await s.createAdminTokenHash('f'.repeat(64)), 'c'.repeat(64))
  await s.addJoinToken({ hash: 'd'.repeat(64), services: ['*'], createdAt: 'now' })
  await s.close()
  assert.equal(statSync(join(dir, 'tokens.json')).mode & 0o777, 0o600)
  const again = new EmbeddedStore(dir)
  await again.open()
  assert.equal(await again.adminTokenHash(), 'c'.repeat(64))
  assert.deepEqual((await again.findJoinToken('d'.repeat(64)))?.services, ['*'])
  assert.equal(await again.findJoinToken('e'.repeat(64)), undefined)
  await again.close()
  assert.ok(!readFileSync(join(dir, 'policy.json'), 'utf8').includes('c'.repeat(64)), 'token hashes live only in tokens.json')
})

test('the data dir is 0700 and every file in it 0600 (policy, history, tokens, registry, daemon.json)', async () => {
  const { startTestDaemon, applyPolicy, SERVICE_YAML } = await import('../helpers/daemon.js')
  const dataDir = join(tmp(), 'fresh')
  const t = await startTestDaemon({ dataDir })
  try {
    assert.equal((await applyPolicy(t, SERVICE_YAML)).status, 200)
    assert.equal(statSync(dataDir).mode & 0o777, 0o700)
    const files = [...readdirSync(dataDir).filter((n) => n.endsWith('.json') || n.endsWith('.token')), ...readdirSync(join(dataDir, 'history')).map((n) => join('history', n))]
    assert.ok(files.includes('policy.json') && files.includes('daemon.json') && files.some((f) => f.startsWith('history')), files.join(' '))
    for (const f of files) assert.equal(statSync(join(dataDir, f)).mode & 0o777, 0o600, f)
  } finally {
    await t.daemon.close()
  }
})
