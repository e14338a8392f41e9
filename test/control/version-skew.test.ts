// RELIABILITY S7's version-skew matrix: an instance and a daemon one control-protocol level apart,
// both ways, never widen access and never lock the newer side out.
// - Daemon N-1 → instance N: messages without the fields added since (deleted, critical) are taken.
// - Daemon N+1 → instance N: what the instance does not understand — a resource of a newer
//   apiVersion, an unknown field or kind, an unknown message type, a `critical` feature it lacks —
//   is NACKed and the running policy keeps serving; with no policy yet, requests are refused.
//   An unknown field that is not marked critical is ignored (the daemon lists in `critical` what
//   would widen access if skipped).
// - Instance N+1 → daemon N: fields of a newer protocol in its register/ACK/heartbeat/update bodies
//   are ignored and named back (weft-warning), not refused; the same fields from a caller of the
//   daemon's own level are still a 400 naming the field (a typo is not silently dropped).
// Newer daemons are the fake of test/helpers/fake-daemon.ts (no newer build exists to run); the
// older-daemon side is the real daemon of this build.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { request } from 'undici'
import type { Mesh } from '../../src/index.js'
import { CONTROL_PROTOCOL, PROTOCOL_HEADER, WARNING_HEADER } from '../../src/control/protocol.js'
import { capturingLogger, metricValue } from '../helpers/mesh.js'
import { startTestDaemon } from '../helpers/daemon.js'
import { fakeDaemon, line, service, snapshot } from '../helpers/fake-daemon.js'

const paymentsTimeout = (mesh: Mesh) => mesh.snapshot?.lookup('payments')?.settings.timeoutMs

test('daemon N-1 and N+1 → instance N: older messages are taken; what a newer daemon sends that the instance does not understand is NACKed while the running policy serves', async (t) => {
  let stream: http.ServerResponse | undefined
  const { mesh, ackOf, watches } = await fakeDaemon(t, (w) => {
    stream = w.res
    // An older daemon's snapshot: no `deleted`, no `critical`.
    w.res.write(line(snapshot(5)))
  })
  assert.deepEqual(await ackOf(5, false), { version: 5 })
  assert.equal(paymentsTimeout(mesh), 2000)

  const newer: [object, number, RegExp][] = [
    [snapshot(6, [{ ...service('payments', { timeout: '9s' }), apiVersion: 'weft/v2' }]), 6, /apiVersion.*must be "weft\/v1"/],
    [snapshot(7, [service('payments', { timeout: '9s', hedging: { after: '50ms' } })]), 7, /hedging/],
    [snapshot(8, [service('payments', { timeout: '9s' }), { apiVersion: 'weft/v1', kind: 'RateLimitPolicy', metadata: { name: 'payments' }, spec: { rps: 10 } }]), 8, /RateLimitPolicy/],
    [{ type: 'policy', version: 9, base: 5, resources: [service('payments', { timeout: '9s' })], endpoints: {}, critical: ['deleted', 'revocations.v2'] }, 9, /policy message: needs "revocations\.v2", which this instance does not understand.*upgrade/],
    [{ type: 'policy.v2', version: 10, resources: [] }, 10, /unknown watch message type "policy\.v2"/],
  ]
  for (const [msg, version, error] of newer) {
    stream!.write(line(msg))
    const nack = await ackOf(version, true)
    assert.match(nack.error!, error)
    assert.equal(mesh.configVersion, 5, `still serving version 5 after the NACK of ${version}`)
    assert.equal(paymentsTimeout(mesh), 2000, 'with its policy')
  }

  // Not marked critical: a field the daemon says may be skipped is ignored, the rest applies.
  stream!.write(line({ ...snapshot(11, [service('payments', { timeout: '3s' })]), hints: { compress: true } }))
  assert.deepEqual(await ackOf(11, false), { version: 11 })
  assert.equal(paymentsTimeout(mesh), 3000)
  // A critical feature the instance has is taken.
  stream!.write(line({ type: 'policy', version: 12, base: 11, resources: [service('payments', { timeout: '4s' })], endpoints: {}, deleted: [], critical: ['deleted'] }))
  assert.deepEqual(await ackOf(12, false), { version: 12 })
  assert.equal(paymentsTimeout(mesh), 4000)
  assert.equal(watches.length, 1, 'no message above closed the stream')
})

test('daemon N+1 → instance N with no policy yet: its first view needs a feature the instance lacks, so the instance serves nothing (fail closed) instead of serving without it', async (t) => {
  const { mesh, ackOf } = await fakeDaemon(t, (w) => {
    w.res.write(line({ ...snapshot(3), critical: ['revocations.v2'] }))
  }, { inbound: { health: { port: 0, host: '127.0.0.1' } } })
  const nack = await ackOf(3, true)
  assert.match(nack.error!, /needs "revocations\.v2"/)
  const server = http.createServer((_req, res) => res.end('paid'))
  const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
  // The fake daemon hands out no certificate, so the default STRICT mTLS refuses plaintext first;
  // without it the authz layer would answer WEFT_ERR_CONTROL_UNAVAILABLE (fail-closed-start.test.ts).
  const r = await request(`http://127.0.0.1:${port}/charge`)
  const body = (await r.body.json()) as { error: { code: string } }
  assert.equal(r.statusCode, 401, JSON.stringify(body))
  assert.equal(body.error.code, 'WEFT_ERR_UNAUTHENTICATED')
  const ready = await request(`http://127.0.0.1:${mesh.adminAddress!.port}/readyz`)
  await ready.body.dump()
  assert.equal(ready.statusCode, 503, 'not ready without a policy it understands')
  assert.equal(metricValue(await mesh.metrics(), 'weft_config_source', { source: 'none' }), 1)
})

test('instance N+1 → daemon N: fields of a newer protocol are ignored and named back, not refused; from a caller of the daemon\'s own level they are still a 400', async (t) => {
  const log = capturingLogger()
  const d = await startTestDaemon({ logger: log })
  t.after(() => d.daemon.close())
  const call = async (path: string, token: string, body: object, level?: number) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    if (level !== undefined) headers[PROTOCOL_HEADER] = String(level)
    const r = await request(d.url + path, { method: path.endsWith('/ack') || path.endsWith('/heartbeat') || path === '/v1/register' ? 'POST' : 'PUT', headers, body: JSON.stringify(body) })
    return { status: r.statusCode, warning: r.headers[WARNING_HEADER] as string | undefined, body: (await r.body.json()) as Record<string, any> }
  }
  const newer = CONTROL_PROTOCOL + 1
  const registration = { service: 'payments', address: '127.0.0.1', port: 9, labels: { version: 'v1' }, locality: { zone: 'a', subzone: 'a1' }, weight: 3 }

  // Same level (or none, as curl): a field the daemon does not know is a typo, refused by name.
  for (const level of [undefined, CONTROL_PROTOCOL]) {
    const refused = await call('/v1/register', d.joinToken, registration, level)
    assert.equal(refused.status, 400)
    assert.match(refused.body.error.message, /unknown field "weight"/)
  }

  const reg = await call('/v1/register', d.joinToken, registration, newer)
  assert.equal(reg.status, 201, JSON.stringify(reg.body))
  assert.equal(reg.warning, `ignored fields of a newer control protocol (${newer} > ${CONTROL_PROTOCOL}): register.weight, locality.subzone`)
  const { id, token } = reg.body as { id: string; token: string }
  const instances = (await (await request(`${d.url}/v1/instances`, { headers: { authorization: `Bearer ${d.adminToken}` } })).body.json()) as { instances: { id: string; labels: Record<string, string>; locality?: { zone?: string } }[] }
  const registered = instances.instances.find((i) => i.id === id)!
  assert.equal(registered.labels.version, 'v1', 'the fields it knows are taken')
  assert.equal(registered.locality?.zone, 'a', JSON.stringify(registered))

  const ack = await call(`/v1/instances/${id}/ack`, token, { version: 0, appliedAt: '2026-12-07T00:00:00Z' }, newer)
  assert.equal(ack.status, 200)
  assert.match(ack.warning!, /ack\.appliedAt/)
  const beat = await call(`/v1/instances/${id}/heartbeat`, token, { load: 0.2 }, newer)
  assert.equal(beat.status, 200)
  assert.match(beat.warning!, /heartbeat\.load/)
  const update = await call(`/v1/instances/${id}`, token, { address: '127.0.0.1', port: 10, drain: false }, newer)
  assert.equal(update.status, 200)
  assert.match(update.warning!, /update\.drain/)
  assert.equal((await call(`/v1/instances/${id}/ack`, token, { version: 0, appliedAt: 'x' }, CONTROL_PROTOCOL)).status, 400, 'the same ACK from a caller of the daemon\'s level is refused')

  // Said once per instance and field set, however often the instance calls.
  await call(`/v1/instances/${id}/heartbeat`, token, { load: 0.3 }, newer)
  const said = log.lines.filter((l) => l.includes(`instance ${id} speaks control protocol ${newer}`))
  assert.equal(said.length, 4, said.join('\n'))
})
