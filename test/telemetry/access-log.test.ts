// The access log (MeshOptions.accessLog): one JSON line per outbound call and per inbound request,
// saying what happened and which rule fired. Real node:http servers behind mesh.listen, real calls
// through a client mesh, on 127.0.0.1.
import assert from 'node:assert/strict'
import http from 'node:http'
import { test } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { capturingLogger, service } from '../helpers/mesh.js'
import { deadPort } from '../helpers/upstream.js'

type Line = Record<string, unknown>

async function pair(t: { after(fn: () => unknown): void }, clientLog: object, serverLog: object): Promise<{ client: Mesh; port: number }> {
  const deny = { apiVersion: 'weft/v1', kind: 'AuthorizationPolicy', metadata: { name: 'deny-admin' }, spec: { service: 'payments', action: 'DENY', rules: [{ to: [{ paths: ['/admin'] }] }] } }
  const server = await createMesh({ service: 'payments', config: [deny], logger: capturingLogger(), accessLog: serverLog })
  t.after(() => server.close())
  const { port } = await server.listen(http.createServer((_req, res) => res.end('charged')), { port: 0, host: '127.0.0.1' })
  const dead = await deadPort()
  const client = await createMesh({
    service: 'checkout',
    logger: capturingLogger(),
    accessLog: clientLog,
    config: [
      service('payments', { endpoints: [{ address: `127.0.0.1:${port}` }] }),
      service('ledger', { endpoints: [{ address: `127.0.0.1:${dead}` }], retries: { attempts: 2, retryOn: ['connect-failure'] } }),
    ],
  })
  t.after(() => client.close())
  return { client, port }
}

test('one line per outbound call and per inbound request: status, rule, endpoint, attempts, one trace id across both, no query string', async (t) => {
  const out: Line[] = []
  const inb: Line[] = []
  const { client, port } = await pair(t, { inbound: false, write: (l: string) => out.push(JSON.parse(l) as Line) }, { outbound: false, write: (l: string) => inb.push(JSON.parse(l) as Line) })
  const res = await client.request('http://payments/charge?card=4111111111111111', { headers: { 'x-request-id': 'req-1' } })
  assert.equal(await res.body.text(), 'charged')

  assert.equal(out.length, 1)
  const o = out[0]!
  assert.deepEqual(Object.keys(o), ['time', 'direction', 'protocol', 'method', 'path', 'status', 'error_code', 'duration_ms', 'source_service', 'destination_service', 'route', 'upstream', 'attempts', 'trace_id', 'request_id', 'config_version'])
  assert.deepEqual({ ...o, time: undefined, duration_ms: undefined, trace_id: undefined }, {
    time: undefined, direction: 'outbound', protocol: 'http', method: 'GET', path: '/charge', status: 200, error_code: '', duration_ms: undefined,
    source_service: 'checkout', destination_service: 'payments', route: 'default', upstream: `127.0.0.1:${port}`, attempts: 1, trace_id: undefined, request_id: 'req-1', config_version: 1,
  })
  assert.match(String(o.time), /^\d{4}-\d\d-\d\dT/)
  assert.ok(typeof o.duration_ms === 'number' && o.duration_ms > 0)
  assert.match(String(o.trace_id), /^[0-9a-f]{32}$/)

  assert.equal(inb.length, 1)
  const i = inb[0]!
  assert.equal(i.direction, 'inbound')
  assert.equal(i.path, '/charge')
  assert.equal(i.status, 200)
  assert.equal(i.source_service, 'checkout')
  assert.equal(i.destination_service, 'payments')
  assert.equal(i.trace_id, o.trace_id, 'the server\'s line has the client\'s trace id')
  assert.equal(i.request_id, 'req-1')
  assert.ok(!JSON.stringify([...out, ...inb]).includes('4111'), 'the query string is never logged')
})

test('a failure says which rule fired: a DENY on both sides (the policy named), a dead endpoint with its attempts and retry reason', async (t) => {
  const out: Line[] = []
  const inb: Line[] = []
  const { client } = await pair(t, { inbound: false, write: (l: string) => out.push(JSON.parse(l) as Line) }, { outbound: false, write: (l: string) => inb.push(JSON.parse(l) as Line) })
  const denied = await client.request('http://payments/admin')
  assert.equal(denied.statusCode, 403)
  await denied.body.text()
  assert.equal(out[0]!.status, 403)
  assert.equal(out[0]!.error_code, 'WEFT_ERR_FORBIDDEN', 'the client line carries the server\'s weft-error-code')
  assert.equal(inb[0]!.error_code, 'WEFT_ERR_FORBIDDEN')
  assert.match(String(inb[0]!.message), /deny-admin/)

  await assert.rejects(client.request('http://ledger/post'), { code: 'WEFT_ERR_CONNECT_FAILED' })
  const failed = out[1]!
  assert.equal(failed.destination_service, 'ledger')
  assert.equal(failed.error_code, 'WEFT_ERR_CONNECT_FAILED')
  assert.equal(failed.attempts, 3)
  assert.equal(failed.retry_reason, 'connect-failure')
  assert.match(String(failed.message), /cannot connect to 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
})

test('errorsOnly logs failures only; accessLog: true writes JSON lines to stdout; a bad option names its field', async (t) => {
  const out: Line[] = []
  const { client } = await pair(t, { errorsOnly: true, write: (l: string) => out.push(JSON.parse(l) as Line) }, false as unknown as object)
  await (await client.request('http://payments/charge')).body.text()
  await (await client.request('http://payments/admin')).body.text()
  assert.deepEqual(out.map((l) => [l.path, l.status]), [['/admin', 403]])

  await assert.rejects(createMesh({ service: 'x', accessLog: { sink: () => {} } as never }), /invalid option accessLog\.sink: is not an option/)
  await assert.rejects(createMesh({ service: 'x', accessLog: { errorsOnly: 'yes' } as never }), /invalid option accessLog\.errorsOnly: must be true or false/)

  // true: both directions, every request, one JSON line each on stdout.
  const written: string[] = []
  const stdoutWrite = process.stdout.write
  const mesh = await createMesh({ service: 'checkout', logger: capturingLogger(), accessLog: true, config: [service('payments', { endpoints: [{ address: '127.0.0.1:9' }], retries: { attempts: 0 } })] })
  t.after(() => mesh.close())
  process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write
  try {
    await mesh.request('http://payments/x').catch(() => undefined)
  } finally {
    process.stdout.write = stdoutWrite
  }
  const lines = written.filter((w) => w.startsWith('{"time"'))
  assert.equal(lines.length, 1)
  assert.ok(lines[0]!.endsWith('}\n'))
  assert.equal((JSON.parse(lines[0]!) as Line).error_code, 'WEFT_ERR_CONNECT_FAILED')
})

test('gRPC calls are logged too: the method path, the final gRPC status and its HTTP equivalent, on both sides', async (t) => {
  const { get, ledgerImpl, ledgerService, meshedLedgerClient, startMeshedLedger } = await import('../helpers/grpc-kit.js')
  const out: Line[] = []
  const inb: Line[] = []
  const server = await createMesh({ service: 'ledger', logger: capturingLogger(), accessLog: { outbound: false, write: (l: string) => inb.push(JSON.parse(l) as Line) } })
  const running = await startMeshedLedger(server, ledgerImpl('L1'))
  const client = await createMesh({ service: 'payments', logger: capturingLogger(), accessLog: { inbound: false, write: (l: string) => out.push(JSON.parse(l) as Line) }, config: [ledgerService('ledger', [{ address: running.address }])] })
  const ledger = meshedLedgerClient(t, client, server)
  t.after(async () => void running.server.forceShutdown())
  const entry = await get(ledger, { id: 'e1' })
  assert.equal(entry.id, 'e1')
  assert.equal(out.length, 1)
  assert.deepEqual([out[0]!.protocol, out[0]!.path, out[0]!.grpc_status, out[0]!.status, out[0]!.destination_service], ['grpc', '/weft.test.Ledger/Get', 0, 200, 'ledger'])
  assert.equal(inb.length, 1)
  assert.deepEqual([inb[0]!.protocol, inb[0]!.path, inb[0]!.grpc_status, inb[0]!.source_service], ['grpc', '/weft.test.Ledger/Get', 0, 'payments'])
  assert.equal(inb[0]!.trace_id, out[0]!.trace_id)
})
