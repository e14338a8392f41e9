import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { parse, parseAllDocuments } from 'yaml'
import type { WatchStream } from '../helpers/daemon.js'
import { call, cli, openWatch, register, startCliDaemon, SERVICE_PAYMENTS, syncInstance, waitFor, writeFile, type CliDaemon } from './kit.js'

let d: CliDaemon
const watches: WatchStream[] = []
before(async () => {
  d = await startCliDaemon()
  const r = await cli(['apply', '-f', writeFile(d.dataDir, 'payments.yaml', SERVICE_PAYMENTS), ...d.flags])
  assert.equal(r.status, 0, r.stderr)
})
after(async () => {
  for (const w of watches) w.close()
  await d.close()
})

test('weft get services|instances|endpoints|policies: tables, JSON and YAML', async () => {
  await register(d, { id: 'payments-a', service: 'payments', address: '127.0.0.1', port: 8081, labels: { version: 'v1' } })
  await register(d, { id: 'payments-b', service: 'payments', address: '127.0.0.1', port: 8082, labels: { version: 'v2' }, locality: { zone: 'z1' } })
  await register(d, { id: 'ledger-a', service: 'ledger', address: '127.0.0.1', port: 9001, protocol: 'grpc' })
  await register(d, { id: 'checkout-a', service: 'checkout' })

  const svc = await cli(['get', 'services', ...d.flags])
  assert.equal(svc.status, 0, svc.stderr)
  const rows = svc.stdout.trimEnd().split('\n').map((l) => l.split(/\s+/))
  assert.deepEqual(rows[0], ['NAME', 'NAMESPACE', 'PROTOCOL', 'SOURCE', 'ENDPOINTS'])
  assert.deepEqual(rows.find((r) => r[0] === 'payments'), ['payments', 'default', 'http', 'both', '2'])
  assert.deepEqual(rows.find((r) => r[0] === 'ledger'), ['ledger', 'default', 'grpc', 'registry', '1'])
  const svcJson = JSON.parse((await cli(['get', 'svc', '-o', 'json', ...d.flags])).stdout) as { services: { name: string }[] }
  assert.ok(svcJson.services.some((s) => s.name === 'payments'))
  const svcYaml = parse((await cli(['get', 'services', '-o', 'yaml', ...d.flags])).stdout) as { services: { name: string }[] }
  assert.deepEqual(svcYaml, svcJson)

  const inst = await cli(['get', 'instances', ...d.flags])
  assert.equal(inst.status, 0, inst.stderr)
  assert.match(inst.stdout, /^INSTANCE\s+SERVICE\s+NAMESPACE\s+ADDRESS\s+PROTOCOL\s+LABELS\s+LOCALITY\n/)
  assert.match(inst.stdout, /payments-b\s+payments\s+default\s+127\.0\.0\.1:8082\s+http\s+version=v2\s+zone=z1\n/)
  assert.match(inst.stdout, /checkout-a\s+checkout\s+default\s+-\s+http\s+-\s+-\n/)
  const instJson = JSON.parse((await cli(['get', 'instances', '-o', 'json', ...d.flags])).stdout) as { instances: { id: string }[] }
  assert.deepEqual(instJson.instances.map((i) => i.id).sort(), ['checkout-a', 'ledger-a', 'payments-a', 'payments-b'])
  assert.ok(!JSON.stringify(instJson).includes('tokenHash'))

  const eps = await cli(['get', 'endpoints', ...d.flags])
  assert.equal(eps.status, 0, eps.stderr)
  assert.match(eps.stdout, /ledger\s+default\s+127\.0\.0\.1:9001\s+grpc\s+-\s+ledger-a\n/)
  assert.match(eps.stdout, /payments\s+default\s+127\.0\.0\.1:8081\s+http\s+version=v1\s+payments-a\n/)

  const pol = await cli(['get', 'policies', ...d.flags])
  assert.match(pol.stdout, /^KIND\s+NAMESPACE\s+NAME\nService\s+default\s+payments\nRoute\s+default\s+payments-canary\n$/)
  // YAML is the resources themselves: it applies back unchanged.
  const yaml = await cli(['get', 'policies', '-o', 'yaml', ...d.flags])
  assert.deepEqual(parseAllDocuments(yaml.stdout).map((doc) => (doc.toJS() as { kind: string }).kind), ['Service', 'Route'])
  const back = await cli(['apply', '-f', writeFile(d.dataDir, 'back.yaml', yaml.stdout), ...d.flags])
  assert.equal(back.status, 0, back.stderr)
  assert.match(back.stdout, /Service\/payments unchanged\nRoute\/payments-canary unchanged\n/)
})

test('weft get endpoints warns about a registered endpoint whose protocol differs from its Service', async () => {
  await register(d, { id: 'payments-grpc', service: 'payments', address: '127.0.0.1', port: 8083, protocol: 'grpc' })
  const eps = await cli(['get', 'endpoints', ...d.flags])
  assert.equal(eps.status, 0, eps.stderr)
  assert.match(eps.stdout, /warning: default\/payments: endpoint 127\.0\.0\.1:8083 \(instance payments-grpc\) left out: protocol grpc but the Service is http/)
  const del = await call(d.url, 'DELETE', '/v1/instances/payments-grpc', d.adminToken)
  assert.equal(del.status < 300, true)
})

test('weft status: SYNCED for an instance that ACKed, NACKED with its error after a NACK', async () => {
  const reg = await register(d, { id: 'orders-a', service: 'orders', address: '127.0.0.1', port: 7001 })
  const w = await openWatch(d.url, reg.id, reg.token)
  watches.push(w)
  const version = await syncInstance(d, w, reg.id, reg.token)

  const st = await cli(['status', ...d.flags])
  assert.equal(st.status, 0, st.stderr)
  assert.match(st.stdout, /^daemon version \d+\nINSTANCE\s+SERVICE\s+ADDRESS\s+VERSION\s+STATE\s+CONTROL\s+LAST SEEN\n/)
  assert.match(st.stdout, new RegExp(`orders-a\\s+orders\\s+127\\.0\\.0\\.1:7001\\s+${version}\\s+SYNCED\\s+plaintext\\s+\\d+s ago\\n`))
  // Registered, never watching: not connected.
  assert.match(st.stdout, /payments-a\s+payments\s+127\.0\.0\.1:8081\s+-\s+DISCONNECTED/)

  // A new policy version arrives; the instance refuses it.
  const r = await cli(['apply', '-f', writeFile(d.dataDir, 'p3.yaml', SERVICE_PAYMENTS.replace('timeout: 5s', 'timeout: 3s')), ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  const next = await waitFor(w, (m) => (m.type === 'snapshot' || m.type === 'policy') && m.version > version)
  const nack = await call(d.url, 'POST', `/v1/instances/${reg.id}/ack`, reg.token, { version: next.version, error: 'Service/payments spec.timeout: boom\nsecond line' })
  assert.ok(nack.status < 300, JSON.stringify(nack.body))

  const st2 = await cli(['status', ...d.flags])
  assert.match(st2.stdout, new RegExp(`orders-a\\s+orders\\s+127\\.0\\.0\\.1:7001\\s+${version} \\(sent ${next.version}\\)\\s+NACKED \\(version ${next.version}\\)`))
  assert.match(st2.stdout, new RegExp(`\\norders-a NACKED version ${next.version}:\\n  Service/payments spec\\.timeout: boom\\n  second line\\n`))
  const json = JSON.parse((await cli(['status', '-o', 'json', ...d.flags])).stdout) as { instances: { id: string; state: string; nack?: { error: string } }[] }
  const orders = json.instances.find((i) => i.id === 'orders-a')!
  assert.equal(orders.state, 'NACKED')
  assert.match(orders.nack!.error, /boom/)
})
