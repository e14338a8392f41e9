// A restarted daemon (embedded store) restores the registrations it had as leases of one TTL:
// callers keep their endpoints while instances reconnect; an instance that never returns ends.
import assert from 'node:assert/strict'
import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { EmbeddedStore } from '../../src/daemon/embedded-store.js'
import type { InstanceRecord, StoreEvent } from '../../src/daemon/store.js'
import { call, eventually, openWatch, register, startTestDaemon } from '../helpers/daemon.js'

const rec = (id: string, port: number): InstanceRecord => ({
  id, service: 'payments', namespace: 'default', address: '127.0.0.1', port, protocol: 'http', labels: {}, tokenHash: 'a'.repeat(64), joinHash: 'b'.repeat(64), registeredAt: new Date().toISOString(),
})

test('embedded store: registrations survive a reopen as leases that end after the restore TTL unless attached again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-store-'))
  const first = new EmbeddedStore(dir)
  await first.open()
  const back = rec('back', 8081)
  await first.attachInstance(back)
  await first.attachInstance(rec('gone', 8082))
  await first.close()
  assert.equal(statSync(join(dir, 'registry.json')).mode & 0o777, 0o600)

  const again = new EmbeddedStore(dir, { restoreTtlMs: 300 })
  await again.open()
  const events: StoreEvent[] = []
  again.onEvent((e) => events.push(e))
  assert.deepEqual((await again.listInstances()).map((r) => r.id).sort(), ['back', 'gone'])
  await again.attachInstance(back)
  await eventually(async () => (await again.listInstances()).length === 1, 5000, 'the unclaimed registration ended')
  assert.deepEqual((await again.listInstances()).map((r) => r.id), ['back'])
  assert.deepEqual(events.map((e) => e.type === 'instances' && e.deleted), [['gone']], 'only the end of the unclaimed lease is an event')
  await again.close()
})

test('daemon restart: endpoints are served at once from the restored registry, and an instance\'s watch resumes with its old token', async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 5000 })
  const reg = await register(d, { service: 'payments', address: '127.0.0.1', port: 8081 })
  const w = await openWatch(d.url, reg.id, reg.token)
  await w.next()
  w.close()
  await d.daemon.close()

  const back = await startTestDaemon({ dataDir: d.dataDir, leaseTtlMs: 5000 })
  t.after(() => back.daemon.close())
  const eps = await call(back.url, 'GET', '/v1/endpoints', back.adminToken)
  assert.deepEqual(eps.body.endpoints['default/payments'].map((e: { instance: string }) => e.instance), [reg.id], 'known before the instance reconnects')
  const again = await openWatch(back.url, reg.id, reg.token)
  t.after(() => again.close())
  assert.equal(again.status, 200, 'the old instance token still works: no re-registration needed')
  const snap = await again.next()
  assert.ok(snap.type === 'snapshot' && snap.endpoints['default/payments']?.[0]?.instance === reg.id)
})

test('restarts do not renew a lease that was running out: an unwatched registration ends on time across repeated restarts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-store-'))
  const first = new EmbeddedStore(dir, { restoreTtlMs: 5000 })
  await first.open()
  await first.attachInstance(rec('dead', 8081))
  await first.detachInstance('dead', 600) // its stream closed: 600 ms left
  await first.close()
  const endsBy = Date.now() + 600
  // A daemon restarting every 150 ms (a crash loop), each time with a 5 s restore TTL.
  let store = first
  while (Date.now() < endsBy + 300) {
    store = new EmbeddedStore(dir, { restoreTtlMs: 5000 })
    await store.open()
    const ids = (await store.listInstances()).map((r) => r.id)
    if (Date.now() > endsBy + 150) assert.deepEqual(ids, [], 'gone once its lease ended, restarts or not')
    await new Promise((r) => setTimeout(r, 150))
    await store.close()
  }
  // A registration held by a stream at shutdown still gets the restore TTL (the daemon was down, not the instance).
  const held = new EmbeddedStore(dir, { restoreTtlMs: 5000 })
  await held.open()
  await held.attachInstance({ ...rec('held', 8082), heldBy: 'http://127.0.0.1:1' })
  await held.close()
  const back = new EmbeddedStore(dir, { restoreTtlMs: 5000 })
  await back.open()
  assert.deepEqual((await back.listInstances()).map((r) => [r.id, r.heldBy]), [['held', undefined]], 'restored, and held by nobody')
  await back.close()
})
