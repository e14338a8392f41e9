// gRPC through the mesh, both sides real: grpc-js servers made by mesh.grpc.server() on loopback, a
// client made by mesh.grpc.client(); every call kind, the metrics on both sides, the caller chain
// and trace context in metadata, the load report, and the client's own close().
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { metricValue } from '../helpers/mesh.js'
import { chat, collect, get, grpc, ledgerImpl, LedgerClient, ledgerService, record, startMeshedLedger, type Ledger, type Running } from '../helpers/grpc-kit.js'

const quiet = { info() {}, warn() {}, error() {} }
let server: Mesh
let caller: Mesh
let client: Ledger
const seen: { method: string; md: grpc.Metadata }[] = []
const ledgers: Running[] = []

before(async () => {
  server = await createMesh({ service: 'ledger', logger: quiet, config: [], inbound: { shedding: false } })
  for (const name of ['a', 'b']) ledgers.push(await startMeshedLedger(server, ledgerImpl(name, { onCall: (method, call) => seen.push({ method, md: call.metadata }) })))
  caller = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', ledgers.map((l) => ({ address: l.address })), { loadBalancer: { policy: 'round-robin' } })] })
  client = caller.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
})

after(async () => {
  client.close()
  await caller.close()
  await server.close()
})

test('unary, server-streaming, client-streaming and bidi calls all go through the mesh and reach both endpoints', async () => {
  const froms = new Set<string>()
  for (let i = 0; i < 20; i++) froms.add((await get(client, { id: `g${i}` })).from)
  assert.deepEqual([...froms].sort(), ['a', 'b'], 'round-robin spreads unary calls over both endpoints')
  const list = await collect<{ id: string }>(client.List({ id: 'l' }))
  assert.deepEqual(list.map((e) => e.id), ['l-0', 'l-1', 'l-2'])
  const sum = await record(client, 5)
  assert.equal(sum.count, 5)
  const echoed = await chat(client, ['1', '2', '3'])
  assert.deepEqual(echoed.map((e) => e.id), ['1', '2', '3'])
})

test('client and server record rpc_*_duration_seconds by service, method and status, with both service names', async () => {
  await get(client, { id: 'm' })
  const out = await caller.metrics()
  const labels = { rpc_service: 'weft.test.Ledger', rpc_method: 'Get', rpc_grpc_status_code: '0', source_service: 'payments', destination_service: 'ledger' }
  assert.ok(metricValue(out, 'rpc_client_duration_seconds_count', labels) >= 21, 'client histogram counts every unary call')
  assert.equal(metricValue(out, 'rpc_client_duration_seconds_count', { rpc_method: 'List' }), 1)
  assert.equal(metricValue(out, 'rpc_client_duration_seconds_count', { rpc_method: 'Chat' }), 1)
  assert.equal(metricValue(out, 'http_client_request_duration_seconds_count'), 0, 'gRPC calls are not counted as HTTP')
  const inbound = await server.metrics()
  assert.ok(metricValue(inbound, 'rpc_server_duration_seconds_count', labels) >= 21, 'server histogram: the caller named by weft-caller is source_service')
  assert.equal(metricValue(inbound, 'rpc_server_duration_seconds_count', { rpc_method: 'Record' }), 1)
})

test('the mesh sends the caller chain and a traceparent in metadata; the server answers with its load', async () => {
  seen.length = 0
  const md = new grpc.Metadata()
  md.set('x-user', 'kept')
  let responseMd: grpc.Metadata | undefined
  await new Promise<void>((resolve, reject) => {
    const c = client.Get({ id: 't' }, md, {}, (err) => (err ? reject(err) : resolve()))
    c.on('metadata', (m: grpc.Metadata) => (responseMd = m))
  })
  const got = seen.at(-1)!.md
  assert.equal(got.get('weft-caller')[0], 'payments')
  assert.match(String(got.get('traceparent')[0]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/)
  assert.equal(got.get('x-user')[0], 'kept', 'the application\'s metadata goes through untouched')
  assert.match(String(responseMd?.get('weft-load')[0]), /^\d\.\d{2}$/, 'the meshed server reports its load in response metadata')
})

test('a streamed call is measured from its start to its final status', async () => {
  const slow = await createMesh({ service: 'ledger', logger: quiet, config: [], inbound: { shedding: false } })
  const l = await startMeshedLedger(slow, {
    ...ledgerImpl('slow'),
    List(call: grpc.ServerWritableStream<any, any>) {
      let i = 0
      const t = setInterval(() => {
        call.write({ id: String(i), from: 'slow', amount: i })
        if (++i === 3) {
          clearInterval(t)
          call.end()
        }
      }, 60)
    },
  })
  const m = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', [{ address: l.address }])] })
  const c = m.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  try {
    assert.equal((await collect(c.List({ id: 's' }))).length, 3)
    const text = await m.metrics()
    const sum = metricValue(text, 'rpc_client_duration_seconds_sum', { rpc_method: 'List' })
    assert.ok(sum >= 0.15, `the stream's three 60 ms gaps are inside the measured duration (${sum.toFixed(3)} s)`)
  } finally {
    c.close()
    await m.close()
    await slow.close()
  }
})

test('client.close() leaves the mesh\'s endpoint channels open for other clients', async () => {
  const other = caller.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  await get(other, { id: 'o' })
  other.close()
  assert.equal((await get(client, { id: 'after-close' })).id, 'after-close')
})

test('mesh.grpc.client and listen refuse bad arguments with WEFT_ERR_INVALID_ARG naming them', async () => {
  assert.throws(() => caller.grpc.client(LedgerClient, 'Not A Name'), { code: 'WEFT_ERR_INVALID_ARG', message: /grpc\.client\(service\)/ })
  assert.throws(() => caller.grpc.client('nope' as never, 'ledger'), { code: 'WEFT_ERR_INVALID_ARG', message: /grpc\.client\(Ctor\)/ })
  await assert.rejects(caller.grpc.listen(new grpc.Server(), { port: 0 }), { code: 'WEFT_ERR_INVALID_ARG', message: /mesh\.grpc\.server\(\)/ })
  await assert.rejects(caller.grpc.listen(caller.grpc.server(), { port: -1 }), { code: 'WEFT_ERR_INVALID_ARG', message: /port/ })
})
