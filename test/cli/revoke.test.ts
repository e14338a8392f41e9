// `weft revoke`, `weft revocations` (and `revoke --list`), `weft unrevoke` and the REVOKED mark of
// `weft status`, run as the CLI against a real daemon.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { cli, register, startCliDaemon, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
})
after(() => d.close())

test('weft revoke SERVICE / SPIFFE-ID --reason stores the revocation; --list, revocations and status show it; unrevoke lifts it (exit 1 when not revoked)', async () => {
  await register(d, { service: 'checkout' })
  const r = await cli(['revoke', 'checkout', '--reason', 'key leaked in INC-42', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr, /^revoked at version \d+: instances end their mTLS connections with spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout and refuse new ones/)
  assert.match(r.stdout, /^IDENTITY +REVOKED +REASON\nspiffe:\/\/weft\.local\/ns\/default\/sa\/checkout +\d+s ago +key leaked in INC-42\n$/)
  const byId = await cli(['revoke', 'spiffe://weft.local/ns/shop/sa/cart', '--reason', 'decommissioned', ...d.flags])
  assert.equal(byId.status, 0, byId.stderr)

  const list = await cli(['revoke', '--list', ...d.flags])
  assert.equal(list.status, 0, list.stderr)
  assert.match(list.stdout, /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout +\d+s ago +key leaked in INC-42\n/)
  assert.match(list.stdout, /spiffe:\/\/weft\.local\/ns\/shop\/sa\/cart +\d+s ago +decommissioned\n/)
  const json = await cli(['revocations', '-o', 'json', ...d.flags])
  assert.equal(json.status, 0, json.stderr)
  assert.deepEqual((JSON.parse(json.stdout) as { revocations: { spiffeId: string }[] }).revocations.map((x) => x.spiffeId).sort(), ['spiffe://weft.local/ns/default/sa/checkout', 'spiffe://weft.local/ns/shop/sa/cart'])
  const status = await cli(['status', ...d.flags])
  assert.equal(status.status, 0, status.stderr)
  assert.match(status.stdout, /\ncheckout-\S+ +checkout .*, REVOKED/)
  assert.match(status.stdout, /\nrevoked identities \(weft unrevoke lifts one\):\nIDENTITY +REVOKED +REASON\n/)

  const lifted = await cli(['unrevoke', 'checkout', ...d.flags])
  assert.equal(lifted.status, 0, lifted.stderr)
  assert.match(lifted.stdout, /^revocation of spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout lifted: version \d+/)
  assert.equal((await cli(['unrevoke', 'spiffe://weft.local/ns/shop/sa/cart', ...d.flags])).status, 0)
  const again = await cli(['unrevoke', 'checkout', ...d.flags])
  assert.equal(again.status, 1)
  assert.match(again.stderr, /spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout is not revoked/)
  const none = await cli(['revocations', ...d.flags])
  assert.equal(none.stdout, 'no identity is revoked\n')
})

test('weft revoke: usage errors exit 2 (no reason, no identity, -n with a SPIFFE ID, not a workload ID); a non-admin token exits 1', async () => {
  for (const args of [['revoke', 'checkout'], ['revoke', '--reason', 'x'], ['revoke', 'spiffe://weft.local/ns/a/sa/b', '-n', 'a', '--reason', 'x'], ['revoke', 'spiffe://weft.local/b', '--reason', 'x'], ['unrevoke']]) {
    const r = await cli([...args, ...d.flags])
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`)
  }
  const r = await cli(['revoke', 'checkout', '--reason', 'x', '--control', d.url, '--token', d.joinToken])
  assert.equal(r.status, 1)
  assert.match(r.stderr, /admin token/)
})
