import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { EmbeddedStore } from '../../src/daemon/embedded-store.js'
import { ConflictError } from '../../src/daemon/store.js'
import { applyPolicy, call, register, SERVICE_YAML, startTestDaemon, type TestDaemon } from '../helpers/daemon.js'

const ROUTE_YAML = (service: string, name = 'payments-canary') => `apiVersion: weft/v1
kind: Route
metadata: { name: ${name} }
spec:
  service: ${service}
  rules:
    - backends: [{ weight: 100 }]
`

let t: TestDaemon
before(async () => {
  t = await startTestDaemon()
})
after(() => t.daemon.close())

const policyOf = async (d: TestDaemon) => (await call(d.url, 'GET', '/v1/policy', d.adminToken)).body as { version: number; resources: { kind: string; metadata: { name: string } }[] }

test('apply: valid → a new version with what changed; the same again keeps the version', async () => {
  const first = await applyPolicy(t, SERVICE_YAML)
  assert.equal(first.status, 200, JSON.stringify(first.body))
  assert.deepEqual(first.body.changes, [{ kind: 'Service', namespace: 'default', name: 'payments', action: 'created' }])
  assert.ok(Number.isInteger(first.body.version) && first.body.version > 0)
  assert.deepEqual(first.body.warnings, [])

  const same = await applyPolicy(t, SERVICE_YAML)
  assert.equal(same.status, 200)
  assert.equal(same.body.version, first.body.version)
  assert.equal(same.body.changes[0].action, 'unchanged')
  // JSON is accepted too, and field order does not make a change.
  const json = await call(t.url, 'POST', '/v1/policy', t.adminToken, JSON.stringify({ spec: { protocol: 'http' }, metadata: { name: 'payments' }, kind: 'Service', apiVersion: 'weft/v1' }), 'application/json')
  assert.equal(json.body.version, first.body.version)

  const updated = await applyPolicy(t, SERVICE_YAML.replace('protocol: http', 'protocol: http\n  timeout: 2s'))
  assert.equal(updated.body.changes[0].action, 'updated')
  assert.ok(updated.body.version > first.body.version)
  const p = await policyOf(t)
  assert.equal(p.version, updated.body.version)
  assert.equal(p.resources.length, 1)
})

test('apply: invalid → 422 naming resource, field path, line and column; nothing stored', async () => {
  const before = await policyOf(t)
  const yaml = `${SERVICE_YAML}---
apiVersion: weft/v1
kind: Route
metadata: { name: bad-route }
spec:
  service: payments
  rules:
    - backends: [{ weight: 100 }]
      timeout: soon
`
  const r = await applyPolicy(t, yaml)
  assert.equal(r.status, 422)
  assert.equal(r.body.error.code, 'WEFT_ERR_POLICY_INVALID')
  const issue = r.body.error.details.issues.find((i: { severity: string }) => i.severity === 'error')
  assert.equal(issue.resource, 'Route/bad-route')
  assert.equal(issue.path, 'spec.rules[0].timeout')
  assert.equal(issue.line, 14)
  assert.equal(issue.column, 16)
  assert.match(r.body.error.message, /14:16/)
  assert.deepEqual(await policyOf(t), before)

  const syntax = await applyPolicy(t, 'kind: Service\nmetadata: { name: [\n')
  assert.equal(syntax.status, 422)
  assert.equal(syntax.body.error.details.issues[0].code, 'WEFT_E_SYNTAX')
  assert.equal(typeof syntax.body.error.details.issues[0].line, 'number')
  assert.equal((await applyPolicy(t, '')).status, 400, 'a body with no resources')
})

test('apply validates the merged policy with the registry: a Route to a service neither declared nor registered is refused', async () => {
  const unknown = await applyPolicy(t, ROUTE_YAML('ghost'))
  assert.equal(unknown.status, 422)
  const issue = unknown.body.error.details.issues[0]
  assert.equal(issue.code, 'WEFT_E_REF_UNKNOWN')
  assert.equal(issue.path, 'spec.service')
  assert.deepEqual([issue.line, issue.column], [5, 12])
  // Declared in an earlier apply: fine.
  assert.equal((await applyPolicy(t, ROUTE_YAML('payments'))).status, 200)
  // Only registered (no Service resource): fine too.
  await register(t, { service: 'ledger', address: '127.0.0.1', port: 9001 })
  assert.equal((await applyPolicy(t, ROUTE_YAML('ledger', 'ledger-route'))).status, 200)
})

test('dryRun validates and reports the changes but stores nothing', async () => {
  const before = await policyOf(t)
  const r = await applyPolicy(t, SERVICE_YAML.replace('payments', 'dry'), '?dryRun=true')
  assert.equal(r.status, 200)
  assert.equal(r.body.dryRun, true)
  assert.equal(r.body.changes[0].action, 'created')
  assert.equal(r.body.version, before.version)
  assert.deepEqual(await policyOf(t), before)
  assert.equal((await applyPolicy(t, ROUTE_YAML('nowhere', 'x'), '?dryRun=true')).status, 422)
})

test('delete: 404 when absent, 422 when a Route would be left dangling, else a new version', async () => {
  assert.equal((await call(t.url, 'DELETE', '/v1/policy/Service/nope', t.adminToken)).status, 404)
  await applyPolicy(t, SERVICE_YAML.replace('payments', 'orders'))
  await applyPolicy(t, ROUTE_YAML('orders', 'orders-route'))
  const dangling = await call(t.url, 'DELETE', '/v1/policy/Service/orders', t.adminToken)
  assert.equal(dangling.status, 422)
  assert.equal(dangling.body.error.details.issues[0].code, 'WEFT_E_REF_UNKNOWN')
  const before = await policyOf(t)
  const r1 = await call(t.url, 'DELETE', '/v1/policy/Route/orders-route', t.adminToken)
  assert.equal(r1.status, 200)
  assert.ok(r1.body.version > before.version)
  // The kind matches without case.
  const r2 = await call(t.url, 'DELETE', '/v1/policy/service/orders?namespace=default', t.adminToken)
  assert.equal(r2.status, 200)
  assert.ok(!(await policyOf(t)).resources.some((r) => r.metadata.name === 'orders'))
})

test('history lists versions newest first; rollback makes the old policy a new version', async () => {
  const d = await startTestDaemon()
  try {
    const v1 = (await applyPolicy(d, SERVICE_YAML)).body.version
    const v2 = (await applyPolicy(d, ROUTE_YAML('payments'))).body.version
    const v3 = (await call(d.url, 'DELETE', '/v1/policy/Route/payments-canary', d.adminToken)).body.version
    const h = (await call(d.url, 'GET', '/v1/history', d.adminToken)).body.entries
    assert.deepEqual(h.map((e: { version: number }) => e.version), [v3, v2, v1])
    assert.deepEqual(h.map((e: { action: string }) => e.action), ['delete', 'apply', 'apply'])
    assert.equal(h[1].summary, 'created Route/payments-canary')
    assert.ok(!Number.isNaN(Date.parse(h[0].at)))

    const rb = await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: v2 })
    assert.equal(rb.status, 200, JSON.stringify(rb.body))
    assert.ok(rb.body.version > v3)
    assert.deepEqual(rb.body.changes.find((c: { kind: string }) => c.kind === 'Route'), { kind: 'Route', namespace: 'default', name: 'payments-canary', action: 'created' })
    assert.equal((await policyOf(d)).resources.length, 2)
    const latest = (await call(d.url, 'GET', '/v1/history', d.adminToken)).body.entries[0]
    assert.equal(latest.action, 'rollback')
    assert.equal(latest.version, rb.body.version)

    // Rolling back to what is already current changes nothing.
    const again = await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: v2 })
    assert.equal(again.body.version, rb.body.version)
    assert.equal((await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: 999_999 })).status, 404)
    assert.equal((await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: 'two' })).status, 400)
  } finally {
    await d.daemon.close()
  }
})

test('a restart on the same data dir keeps policy and history, and versions go on upward', async () => {
  const d = await startTestDaemon()
  const v1 = (await applyPolicy(d, SERVICE_YAML)).body.version
  const v2 = (await applyPolicy(d, ROUTE_YAML('payments'))).body.version
  const before = await policyOf(d)
  await d.daemon.close()
  const again = await startTestDaemon({ dataDir: d.dataDir })
  try {
    assert.deepEqual(await policyOf(again), before)
    const h = (await call(again.url, 'GET', '/v1/history', again.adminToken)).body.entries
    assert.deepEqual(h.map((e: { version: number }) => e.version), [v2, v1])
    const health = (await call(again.url, 'GET', '/healthz')).body
    assert.ok(health.version > v2, 'the current version after a restart is a new number')
    const v3 = (await applyPolicy(again, SERVICE_YAML.replace('payments', 'more'))).body.version
    assert.ok(v3 > health.version)
  } finally {
    await again.daemon.close()
  }
})

test('concurrent applies through one daemon are serialized: none is lost', async () => {
  const d = await startTestDaemon()
  try {
    const names = Array.from({ length: 8 }, (_, i) => `svc-${i}`)
    const answers = await Promise.all(names.map((n) => applyPolicy(d, SERVICE_YAML.replace('payments', n))))
    assert.deepEqual(answers.map((a) => a.status), names.map(() => 200))
    assert.equal(new Set(answers.map((a) => a.body.version)).size, names.length)
    assert.equal((await policyOf(d)).resources.length, names.length)
  } finally {
    await d.daemon.close()
  }
})

test('a CAS conflict (another daemon wrote meanwhile) is retried once, then answered 409', async () => {
  // A store where another writer "wins" the next `conflicts` writes.
  class RacingStore extends EmbeddedStore {
    conflicts = 0
    override async writePolicy(...args: Parameters<EmbeddedStore['writePolicy']>): Promise<number> {
      if (this.conflicts > 0) {
        this.conflicts--
        throw new ConflictError(args[2], args[2] + 1)
      }
      return super.writePolicy(...args)
    }
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-daemon-'))
  const store = new RacingStore(dataDir)
  const d = await startTestDaemon({ dataDir, store })
  try {
    store.conflicts = 1
    const once = await applyPolicy(d, SERVICE_YAML)
    assert.equal(once.status, 200)
    assert.equal(once.body.changes[0].action, 'created')
    store.conflicts = 2
    const twice = await applyPolicy(d, ROUTE_YAML('payments'))
    assert.equal(twice.status, 409)
    assert.equal(twice.body.error.code, 'WEFT_ERR_CONFLICT')
    store.conflicts = 2
    const rb = await call(d.url, 'POST', '/v1/rollback', d.adminToken, { version: once.body.version })
    assert.equal(rb.status, 200, 'rolling back to the current policy changes nothing, so nothing to conflict on')
    assert.equal((await policyOf(d)).resources.length, 1)
  } finally {
    await d.daemon.close()
  }
})
