// test: serial (daemon restarts within short leases; scripts/run-tests.mjs runs it alone)
// RELIABILITY F5 across a daemon restart: the list of intended deletions is seeded at start from
// the store's kept policy history (src/daemon/deletion-seed.ts), so an instance that missed a DELETE
// while the daemon was away drops the policy instead of keeping it. Real daemons on one data dir.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { PolicyMessage, SnapshotMessage } from '../../src/control/protocol.js'
import { seedDeletions } from '../../src/daemon/deletion-seed.js'
import type { HistoryEntry, Store, StoredResource } from '../../src/daemon/store.js'
import { silentLogger } from '../../src/util/logger.js'
import { applyPolicy, call, openWatch, register, startTestDaemon, type TestDaemon, type WatchStream } from '../helpers/daemon.js'
import { controlMesh, statusOf, waitSynced } from '../helpers/control-kit.js'
import { metricValue } from '../helpers/mesh.js'
import { AP, AP_KEY, SERVICE } from '../helpers/deletion-fixtures.js'


async function firstSnapshot(d: TestDaemon, service: string): Promise<SnapshotMessage | PolicyMessage> {
  const inst = await register(d, { service })
  const w: WatchStream = await openWatch(d.url, inst.id, inst.token)
  try {
    for (;;) {
      const m = await w.next()
      if (m.type === 'snapshot' || m.type === 'policy') return m
    }
  } finally {
    w.close()
  }
}

/** Closes `d` and starts a daemon on the same data dir and port. */
async function restart(d: TestDaemon, extra: Record<string, unknown> = {}): Promise<TestDaemon> {
  const port = d.daemon.port
  await d.daemon.close()
  return startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${port}`, ...extra })
}

test('a DELETE before a restart is still listed in the restarted daemon\'s snapshots (its scope only), and a policy moved to another service is listed for the one it left', async (t) => {
  const d = await startTestDaemon()
  assert.equal((await applyPolicy(d, SERVICE + '---\n' + AP())).status, 200)
  const del = await call(d.url, 'DELETE', '/v1/policy/AuthorizationPolicy/payments-from-web', d.adminToken)
  assert.equal(del.status, 200, JSON.stringify(del.body))
  const again = await restart(d)
  t.after(() => again.daemon.close())
  const snap = await firstSnapshot(again, 'payments')
  assert.equal(snap.type, 'snapshot')
  assert.ok(!snap.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.deepEqual(snap.deleted, [AP_KEY], 'the restarted daemon lists the deletion it did not see')
  assert.equal((await firstSnapshot(again, 'checkout')).deleted, undefined, 'not in another service\'s scope')

  // Applied again, then moved to ledger by an apply: after a restart payments is told it is gone.
  assert.equal((await applyPolicy(again, AP())).status, 200)
  assert.equal((await applyPolicy(again, AP('ledger'))).status, 200)
  const third = await restart(again)
  t.after(() => third.daemon.close())
  assert.deepEqual((await firstSnapshot(third, 'payments')).deleted, [AP_KEY])
  const ledger = await firstSnapshot(third, 'ledger')
  assert.ok(ledger.resources.some((r) => (r as { kind: string }).kind === 'AuthorizationPolicy'))
  assert.equal(ledger.deleted, undefined, 'ledger has it')
})

test('an instance disconnected during the DELETE and the restart drops the policy (no keep, no ambient error)', async (t) => {
  const d = await startTestDaemon({ leaseTtlMs: 1000 })
  const port = d.daemon.port
  assert.equal((await applyPolicy(d, SERVICE + '---\n' + AP())).status, 200)
  const payments = await controlMesh(d, 'payments')
  t.after(() => payments.close())
  await waitSynced(d, [payments.instanceId!])
  const withAp = payments.configVersion
  await d.daemon.close()
  // The DELETE goes through a daemon on another port (same data dir): payments does not hear of it.
  const aside = await startTestDaemon({ dataDir: d.dataDir, listen: '127.0.0.1:0' })
  const del = await call(aside.url, 'DELETE', '/v1/policy/AuthorizationPolicy/payments-from-web', aside.adminToken)
  assert.equal(del.status, 200, JSON.stringify(del.body))
  await aside.daemon.close()
  const back = await startTestDaemon({ dataDir: d.dataDir, listen: `127.0.0.1:${port}`, leaseTtlMs: 1000 })
  t.after(() => back.daemon.close())
  await waitSynced(back, [payments.instanceId!], 15_000)
  assert.ok(payments.configVersion > withAp, 'payments runs the view after the DELETE')
  assert.ok(!payments.log.lines.some((l) => l.includes('without deleting it')), payments.log.lines.join('\n'))
  assert.equal(metricValue(await payments.metrics(), 'weft_config_rejected_total', { source: 'deletion' }), 0)
  const row = (await statusOf(back)).instances.find((i) => i.id === payments.instanceId)
  assert.equal(row?.keptDeleted, undefined, JSON.stringify(row))
})

test('seedDeletions: a delete or rollback between consecutive kept versions counts, an apply never does; an unreadable version breaks the chain; what is back now is not deleted', async () => {
  const res = (name: string, service = 'payments'): StoredResource => ({ kind: 'AuthorizationPolicy', namespace: 'default', name, value: { kind: 'AuthorizationPolicy', metadata: { name }, spec: { service } } })
  const versions: Record<number, StoredResource[] | undefined> = {
    1: [res('a'), res('b'), res('c'), res('d'), res('m')],
    2: [res('b'), res('c'), res('d'), res('m')], // delete a
    3: [res('c'), res('d'), res('m', 'ledger')], // "apply" drops b (a hand-edited store): not listed; m moved
    4: undefined, // unreadable: 4 → 5 is not compared
    5: [res('d'), res('m', 'ledger')], // rollback drops c, but 4 is unknown
    6: [res('m', 'ledger')], // delete d
    7: [res('d'), res('m', 'ledger'), res('a')], // rollback: d and a back
    8: [res('m', 'ledger')], // delete d and a again
  }
  const actions: HistoryEntry['action'][] = ['apply', 'apply', 'delete', 'apply', 'apply', 'rollback', 'delete', 'rollback', 'delete']
  const history: HistoryEntry[] = Object.keys(versions).map(Number).reverse().map((v) => ({ version: v, at: '', action: actions[v]!, summary: '' }))
  const store = { history: async () => history, policyAt: async (v: number) => versions[v] } as unknown as Store
  const seed = await seedDeletions(store, { version: 8, resources: versions[8]! }, silentLogger, 1000)
  assert.deepEqual([...seed.deleted.keys()], ['AuthorizationPolicy/default/d', 'AuthorizationPolicy/default/a'])
  assert.deepEqual([...seed.former.keys()], ['AuthorizationPolicy/default/m'])
  assert.deepEqual((seed.former.get('AuthorizationPolicy/default/m')![0] as { spec: { service: string } }).spec.service, 'payments')
  // Bounded: only the newest `limit`.
  assert.deepEqual([...(await seedDeletions(store, { version: 8, resources: versions[8]! }, silentLogger, 1)).deleted.keys()], ['AuthorizationPolicy/default/a'])
  // A store that fails: nothing seeded, the daemon still starts.
  const broken = { history: async () => Promise.reject(new Error('down')) } as unknown as Store
  assert.equal((await seedDeletions(broken, { version: 8, resources: [] }, silentLogger, 1000)).deleted.size, 0)
})
