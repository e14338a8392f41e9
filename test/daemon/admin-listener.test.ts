// A separate admin listener (RELIABILITY 3.4: "a separate admin identity on a separate listener or
// port, with audit logging"): with adminListen set, the daemon's main port serves instances and
// refuses the admin token; the admin port takes the admin token and no other; what an admin applies
// there reaches instances watching on the main port. The CLI finds the admin port in daemon.json.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { capturingLogger } from '../helpers/mesh.js'
import { call, openWatch, register, startTestDaemon } from '../helpers/daemon.js'
import { cli, startCliDaemon, writeFile } from '../cli/kit.js'

const SERVICE = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { timeout: 2s }\n'

test('with an admin listener, the main port refuses the admin token, the admin port refuses every other token, and a change made on the admin port reaches instances on the main one', async (t) => {
  const log = capturingLogger()
  const d = await startTestDaemon({ adminListen: '127.0.0.1:0', logger: log })
  t.after(() => d.daemon.close())
  const admin = d.daemon.adminUrl
  assert.ok(admin && admin !== d.url, `an admin URL of its own (got ${admin})`)
  assert.deepEqual(JSON.parse(readFileSync(join(d.dataDir, 'daemon.json'), 'utf8')), { url: d.url, adminUrl: admin, pid: process.pid })

  // An instance registers and watches on the main port.
  const inst = await register(d, { service: 'checkout', address: '127.0.0.1', port: 9999 })
  const w = await openWatch(d.url, inst.id, inst.token)
  t.after(() => w.close())
  assert.equal(w.status, 200)
  const first = await w.next()
  const startVersion = (first as { version: number }).version

  // The admin token on the main port: refused before any handler runs, naming where to go.
  const onMain = await call(d.url, 'POST', '/v1/policy', d.adminToken, SERVICE, 'application/yaml')
  assert.equal(onMain.status, 403)
  assert.equal(onMain.body.error.code, 'WEFT_ERR_FORBIDDEN')
  assert.ok(onMain.body.error.message.includes(admin), onMain.body.error.message)
  assert.equal((await call(d.url, 'GET', '/v1/status', d.adminToken)).status, 403)
  assert.equal((await call(d.url, 'DELETE', `/v1/instances/${inst.id}`, d.adminToken)).status, 403, 'nor can it remove an instance there')

  // On the admin port the admin token works; the change is pushed to the watcher on the main port.
  const applied = await call(admin, 'POST', '/v1/policy', d.adminToken, SERVICE, 'application/yaml')
  assert.equal(applied.status, 200, JSON.stringify(applied.body))
  const pushed = await w.next()
  assert.ok((pushed as { version: number }).version > startVersion, JSON.stringify(pushed))
  assert.ok(log.lines.some((l) => l.includes('control daemon: admin POST /v1/policy answered 200')), 'the write is audited as before')

  // The admin port takes no other token: not the join token, not an instance's.
  const joinOnAdmin = await call(admin, 'POST', '/v1/register', d.joinToken, { service: 'checkout', address: '127.0.0.1', port: 9998 })
  assert.equal(joinOnAdmin.status, 403)
  assert.ok(joinOnAdmin.body.error.message.includes(d.url), joinOnAdmin.body.error.message)
  assert.equal((await call(admin, 'POST', `/v1/instances/${inst.id}/heartbeat`, inst.token, {})).status, 403)
  // The instance's own calls on the main port are untouched.
  assert.equal((await call(d.url, 'POST', `/v1/instances/${inst.id}/heartbeat`, inst.token, {})).status, 200)

  // Without a token: the public reads answer on both ports, the rest is 401 as anywhere.
  for (const url of [d.url, admin]) {
    assert.equal((await call(url, 'GET', '/healthz')).status, 200)
    assert.equal((await call(url, 'GET', '/v1/jwks')).status, 200)
    assert.equal((await call(url, 'GET', '/v1/status')).status, 401)
  }
  assert.ok(log.lines.some((l) => l.startsWith('warn control daemon: refused POST /v1/policy') && l.includes('admin listener only')), 'the refusal is logged')
  assert.ok(log.lines.some((l) => l.includes(`listening on ${d.url} for instances, admin calls on ${admin}`)), log.lines.join('\n'))
})

test('without adminListen nothing changes: one port takes both, and daemon.json has no adminUrl', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  assert.equal(d.daemon.adminUrl, undefined)
  assert.equal((await call(d.url, 'POST', '/v1/policy', d.adminToken, SERVICE, 'application/yaml')).status, 200)
  assert.equal((await register(d, { service: 'checkout', address: '127.0.0.1', port: 9999 })).id.length > 0, true)
  assert.equal('adminUrl' in JSON.parse(readFileSync(join(d.dataDir, 'daemon.json'), 'utf8')), false)
})

test('the weft commands find the admin listener in daemon.json; pointed at the main port they say where to go', async (t) => {
  const d = await startCliDaemon({ adminListen: '127.0.0.1:0' })
  t.after(() => d.close())
  const file = writeFile(mkdtempSync(`${tmpdir()}/weft-admin-listener-`), 'svc.yaml', SERVICE)
  const viaDir = await cli(['apply', '-f', file, '--data-dir', d.dataDir])
  assert.equal(viaDir.status, 0, viaDir.stderr)
  const viaMain = await cli(['get', 'services', ...d.flags])
  assert.equal(viaMain.status, 1)
  assert.match(viaMain.stderr, /admin listener only \(http:\/\/127\.0\.0\.1:\d+\)/)
})

test('weft daemon --admin-listen with a bad address exits 2 before starting anything', async () => {
  const r = await cli(['daemon', '--admin-listen', 'nowhere'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /--admin-listen must be host:port/)
})
