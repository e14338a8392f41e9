import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { cli, startCliDaemon, SERVICE_PAYMENTS, writeFile, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
})
after(() => d.close())

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

test('weft apply prints each change and the new version; applying again says unchanged', async () => {
  const file = writeFile(d.dataDir, 'payments.yaml', SERVICE_PAYMENTS)
  const first = await cli(['apply', '-f', file, ...d.flags])
  assert.equal(first.status, 0, first.stderr)
  assert.match(first.stdout, /^Service\/payments created\nRoute\/payments-canary created\napplied .*payments\.yaml: version (\d+)\n$/)
  const version = Number(/version (\d+)/.exec(first.stdout)![1])

  const again = await cli(['apply', '-f', file, ...d.flags])
  assert.equal(again.status, 0, again.stderr)
  assert.match(again.stdout, new RegExp(`Service/payments unchanged\nRoute/payments-canary unchanged\nunchanged .*: version stays ${version}\n$`))

  const changed = writeFile(d.dataDir, 'payments-2.yaml', SERVICE_PAYMENTS.replace('timeout: 5s', 'timeout: 4s'))
  const dry = await cli(['apply', '-f', changed, '--dry-run', ...d.flags])
  assert.equal(dry.status, 0, dry.stderr)
  assert.match(dry.stdout, /Service\/payments updated \(dry run\)\nRoute\/payments-canary unchanged\ndry run: nothing was stored/)
  const policy = await cli(['get', 'policies', '-o', 'json', ...d.flags])
  assert.equal(JSON.parse(policy.stdout).version, version, 'a dry run stores nothing')

  const upd = await cli(['apply', '-f', changed, ...d.flags])
  assert.match(upd.stdout, new RegExp(`Service/payments updated\nRoute/payments-canary unchanged\napplied .*: version ${version + 1}\n`))
})

test('weft apply of an invalid file exits 1 with file:line:column and sends nothing', async () => {
  const before = JSON.parse((await cli(['get', 'policies', '-o', 'json', ...d.flags])).stdout)
  const bad = writeFile(d.dataDir, 'bad.yaml', 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: orders }\nspec:\n  loadBalancer: { policy: random }\n')
  const r = await cli(['apply', '-f', bad, ...d.flags])
  assert.equal(r.status, 1)
  assert.match(r.stderr, new RegExp(`${esc(bad)}:5:27 error WEFT_E_FIELD_INVALID Service/orders spec\\.loadBalancer\\.policy: must be one of`))
  assert.match(r.stderr, /1 error; nothing was sent to the daemon/)
  assert.equal(r.stdout, '')
  const afterwards = JSON.parse((await cli(['get', 'policies', '-o', 'json', ...d.flags])).stdout)
  assert.deepEqual(afterwards, before)
})

test('weft apply: the daemon refuses a Route to a service it does not know (422) with the file position', async () => {
  const file = writeFile(d.dataDir, 'orphan.yaml', 'apiVersion: weft/v1\nkind: Route\nmetadata: { name: ghost-route }\nspec:\n  service: ghost\n  rules: [{ backends: [{ weight: 1 }] }]\n')
  const r = await cli(['apply', '-f', file, ...d.flags])
  assert.equal(r.status, 1)
  assert.match(r.stderr, new RegExp(`${esc(file)}:5:12 error WEFT_E_REF_UNKNOWN Route/ghost-route spec\\.service: unknown service "ghost"`))
  assert.match(r.stderr, /the daemon refused it: 1 error \(WEFT_ERR_POLICY_INVALID\); nothing was changed/)
})

test('weft apply -f a -f b is one change: the daemon refusing b stores nothing of a; its issue points into b; both valid make one version', async () => {
  const before = JSON.parse((await cli(['get', 'policies', '-o', 'json', ...d.flags])).stdout)
  // a is fine alone; b names a service only the merged view can judge (so the CLI sends both).
  const a = writeFile(d.dataDir, 'multi-a.yaml', 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: billing }\nspec: { protocol: http }\n')
  const b = writeFile(d.dataDir, 'multi-b.yaml', '---\napiVersion: weft/v1\nkind: Route\nmetadata: { name: ghost-route }\nspec:\n  service: ghost\n  rules:\n    - backends: [{ subset: { version: v1 }, weight: 100 }]\n')
  const r = await cli(['apply', '-f', a, '-f', b, ...d.flags])
  assert.equal(r.status, 1)
  assert.match(r.stderr, new RegExp(`${esc(b)}:6:12 error WEFT_E_REF_UNKNOWN Route/ghost-route spec\\.service: unknown service "ghost"`))
  assert.match(r.stderr, /nothing was changed/)
  assert.deepEqual(JSON.parse((await cli(['get', 'policies', '-o', 'json', ...d.flags])).stdout), before, 'nothing of a stored')
  // Both valid (b routes to the Service a declares): one version for both files.
  const fixed = writeFile(d.dataDir, 'multi-b2.yaml', '%YAML 1.2\n---\napiVersion: weft/v1\nkind: Route\nmetadata: { name: billing-route }\nspec:\n  service: billing\n  rules:\n    - backends: [{ weight: 100 }]\n')
  const ok = await cli(['apply', '-f', a, '-f', fixed, ...d.flags])
  assert.equal(ok.status, 0, ok.stderr)
  assert.match(ok.stdout, new RegExp(`^Service/billing created\nRoute/billing-route created\napplied ${esc(a)}, ${esc(fixed)}: version ${before.version + 1}\n$`))
  for (const [kind, name] of [['Route', 'billing-route'], ['Service', 'billing']]) assert.equal((await cli(['delete', kind!, name!, ...d.flags])).status, 0)
})

test('weft apply -f - reads stdin; weft delete removes a resource, refuses one others need, and 404s', async () => {
  const doc = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: ledger, namespace: books }\nspec: { timeout: 1s }\n'
  const r = await cli(['apply', '-f', '-', ...d.flags], { stdin: doc })
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^Service\/ledger -n books created\napplied <stdin>: version \d+\n$/)

  const del = await cli(['delete', 'svc', 'ledger', '-n', 'books', ...d.flags])
  assert.equal(del.status, 0, del.stderr)
  assert.match(del.stdout, /^Service\/ledger -n books deleted: version \d+\n$/)

  const needed = await cli(['delete', 'service', 'payments', ...d.flags])
  assert.equal(needed.status, 1)
  assert.match(needed.stderr, /WEFT_E_REF_UNKNOWN Route\/payments-canary spec\.service: unknown service "payments"/)

  const gone = await cli(['delete', 'route', 'nope', ...d.flags])
  assert.equal(gone.status, 1)
  assert.match(gone.stderr, /^weft: WEFT_ERR_NOT_FOUND: no Route\/nope in namespace default\n$/)

  const usage = await cli(['delete', 'route', ...d.flags])
  assert.equal(usage.status, 2)
  assert.match(usage.stderr, /weft delete: needs KIND NAME/)
})

test('weft history lists versions newest first; weft rollback makes an old one current', async () => {
  const h = await cli(['history', ...d.flags])
  assert.equal(h.status, 0, h.stderr)
  const lines = h.stdout.trimEnd().split('\n')
  assert.match(lines[0]!, /^VERSION\s+AT\s+ACTION\s+SUMMARY$/)
  const versions = lines.slice(1).map((l) => Number(l.split(/\s+/)[0]))
  assert.deepEqual(versions, [...versions].sort((a, b) => b - a))
  assert.match(h.stdout, /apply\s+created Service\/payments; created Route\/payments-canary/)
  assert.match(h.stdout, /delete\s+deleted Service\/ledger -n books/)

  const json = JSON.parse((await cli(['history', '-o', 'json', ...d.flags])).stdout) as { entries: { version: number; summary: string }[] }
  const first = json.entries.find((e) => e.summary === 'created Service/payments; created Route/payments-canary')!
  const current = json.entries[0]!.version

  const rb = await cli(['rollback', String(first.version), ...d.flags])
  assert.equal(rb.status, 0, rb.stderr)
  assert.match(rb.stdout, /Service\/payments updated\nRoute\/payments-canary unchanged\n/)
  assert.match(rb.stdout, new RegExp(`rolled back to the policy of version ${first.version}: version ${current + 1}\n$`))
  const policy = JSON.parse((await cli(['get', 'policies', '-o', 'json', ...d.flags])).stdout)
  assert.equal(policy.resources.find((r: { kind: string }) => r.kind === 'Service').spec.timeout, '5s')

  const bad = await cli(['rollback', 'latest', ...d.flags])
  assert.equal(bad.status, 2)
})
