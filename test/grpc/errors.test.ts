// Mesh-generated gRPC failures: each one reaches the caller as a normal grpc-js ServiceError with the
// gRPC status from the error table and its WEFT_ERR_* code in the metadata; a server refusal
// (shedding) happens before the handler and carries the same code.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createMesh, ERROR_TABLE, type Mesh, type WeftErrorCode } from '../../src/index.js'
import { metricValue } from '../helpers/mesh.js'
import { get, grpc, ledgerImpl, LedgerClient, ledgerService, startLedger, startMeshedLedger, type Ledger } from '../helpers/grpc-kit.js'

const quiet = { info() {}, warn() {}, error() {} }
const stops: (() => unknown)[] = []
after(async () => {
  for (const s of stops.reverse()) await s()
})

async function caller(config: unknown[]): Promise<{ mesh: Mesh; client: (service?: string) => Ledger }> {
  const mesh = await createMesh({ service: 'payments', logger: quiet, config: config as object[] })
  stops.push(() => mesh.close())
  return {
    mesh,
    client(service = 'ledger') {
      const c = mesh.grpc.client(LedgerClient, service) as unknown as Ledger
      stops.push(() => c.close())
      return c
    },
  }
}

async function failure(p: Promise<unknown>): Promise<grpc.ServiceError> {
  return p.then(() => assert.fail('the call should have failed'), (e: grpc.ServiceError) => e)
}

function assertMeshError(err: grpc.ServiceError, code: WeftErrorCode, what: string): void {
  assert.ok(err instanceof Error, `${what}: a ServiceError`)
  assert.equal(err.code, ERROR_TABLE[code].grpc, `${what}: the gRPC status from the error table`)
  assert.equal(err.metadata.get('weft-error-code')[0], code, `${what}: the WEFT_ERR_* code in metadata`)
}

test('a service the mesh does not know, and a subset with no endpoints: WEFT_ERR_NO_ENDPOINTS as UNAVAILABLE', async () => {
  const l = await startLedger(ledgerImpl('a'))
  stops.push(() => l.server.forceShutdown())
  const { client } = await caller([
    ledgerService('ledger', [{ address: l.address, labels: { version: 'v1' } }]),
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'v3-only' }, spec: { service: 'ledger', rules: [{ matches: [{ grpc: { method: 'List' } }], backends: [{ subset: { version: 'v3' } }] }] } },
  ])
  const unknown = await failure(get(client('nowhere'), { id: 'x' }))
  assertMeshError(unknown, 'WEFT_ERR_NO_ENDPOINTS', 'unknown service')
  assert.match(unknown.details, /"nowhere" is not a service in the mesh config/)
  const empty = await new Promise<grpc.ServiceError>((resolve) => client().List({ id: 'x' }).on('error', resolve))
  assertMeshError(empty, 'WEFT_ERR_NO_ENDPOINTS', 'empty subset')
  assert.match(empty.details, /subset \{"version":"v3"\}/)
  assert.equal((await get(client(), { id: 'ok' })).from, 'a', 'other methods still route to v1')
})

test('fault injection: an abort configured as HTTP 503 reaches a gRPC caller as UNAVAILABLE with WEFT_ERR_FAULT_INJECTED', async () => {
  let runs = 0
  const l = await startLedger(ledgerImpl('a', { onCall: () => runs++ }))
  stops.push(() => l.server.forceShutdown())
  const { mesh, client } = await caller([
    ledgerService('ledger', [{ address: l.address }]),
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'chaos' }, spec: { service: 'ledger', rules: [{ name: 'get-faults', matches: [{ grpc: { service: 'weft.test.Ledger', method: 'Get' } }], fault: { abort: { percent: 100, httpStatus: 503 } } }] } },
  ])
  const err = await failure(get(client(), { id: 'x' }))
  assertMeshError(err, 'WEFT_ERR_FAULT_INJECTED', 'fault')
  assert.equal(runs, 0, 'the injected abort sent nothing')
  assert.equal(metricValue(await mesh.metrics(), 'rpc_client_duration_seconds_count', { rpc_grpc_status_code: '14', error_code: 'WEFT_ERR_FAULT_INJECTED' }), 1)
})

test('a shedding server refuses before the handler: UNAVAILABLE, WEFT_ERR_SERVER_OVERLOADED, pushback; a meshed caller retries elsewhere', async () => {
  const busy = await createMesh({ service: 'ledger', logger: quiet, config: [], inbound: { shedding: false, maxConcurrent: 1 } })
  stops.push(() => busy.close())
  let runs = 0
  let release!: () => void
  const parked = new Promise<void>((r) => (release = r))
  const l = await startMeshedLedger(busy, {
    ...ledgerImpl('busy'),
    Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
      runs++
      if (call.request.id === 'park') void parked.then(() => cb(null, { id: 'park', from: 'busy', amount: 0 }))
      else cb(null, { id: call.request.id, from: 'busy', amount: 0 })
    },
  })
  const plain = new LedgerClient(l.address, grpc.credentials.createInsecure()) as unknown as Ledger
  stops.push(() => plain.close())
  const first = get(plain, { id: 'park' })
  while (runs === 0) await new Promise((r) => setTimeout(r, 5))
  const err = await failure(get(plain, { id: 'second' }))
  assertMeshError(err, 'WEFT_ERR_SERVER_OVERLOADED', 'shed')
  assert.equal(err.metadata.get('grpc-retry-pushback-ms')[0], '1000')
  assert.match(String(err.metadata.get('weft-load')[0]), /^\d\.\d{2}$/, 'the refusal reports the load too')
  assert.equal(runs, 1, 'the shed call never reached its handler')

  const spare = await startLedger(ledgerImpl('spare'))
  stops.push(() => spare.server.forceShutdown())
  const { client } = await caller([ledgerService('ledger', [{ address: l.address }, { address: spare.address }], { loadBalancer: { policy: 'round-robin' } })])
  for (let i = 0; i < 4; i++) assert.equal((await get(client(), { id: `r${i}` })).from, 'spare', 'a shed call is retried on the other endpoint')
  release()
  await first
})

test('a closed mesh fails calls with WEFT_ERR_CLOSED', async () => {
  const { mesh, client } = await caller([ledgerService('ledger', [{ address: '127.0.0.1:1' }])])
  const c = client()
  await mesh.close()
  assertMeshError(await failure(get(c, { id: 'x' })), 'WEFT_ERR_CLOSED', 'closed')
})
