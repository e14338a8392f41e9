// gRPC endpoints' lives as the mesh sees them: an endpoint failing with UNAVAILABLE is ejected by
// outlier detection as for HTTP; a per-try timeout retries only when retryOn names
// deadline-exceeded; mesh.close() drains a meshed gRPC server (in-flight calls finish, new ones are
// refused).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMesh } from '../../src/index.js'
import { metricValue } from '../helpers/mesh.js'
import { get, grpc, ledgerImpl, LedgerClient, ledgerService, startLedger, startMeshedLedger, type Ledger, type Running , grpcFixture } from '../helpers/grpc-kit.js'

const { ledger, clientOf } = grpcFixture()
const quiet = { info() {}, warn() {}, error() {} }

test('an endpoint answering UNAVAILABLE is ejected by outlier detection, then gets no first attempts', async () => {
  let badCalls = 0
  const bad = await ledger({ ...ledgerImpl('bad'), Get(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
    badCalls++
    cb({ code: grpc.status.UNAVAILABLE, details: 'down' })
  } })
  const good = await ledger(ledgerImpl('good'))
  const { mesh, client } = await clientOf([bad, good], { loadBalancer: { policy: 'round-robin' }, outlierDetection: { consecutive5xx: 3, baseEjectionTime: '30s' } })
  for (let i = 0; i < 20; i++) assert.equal((await get(client, { id: String(i) })).from, 'good')
  assert.equal(badCalls, 3, 'three consecutive UNAVAILABLE answers, then the endpoint was out of rotation')
  assert.equal(metricValue(await mesh.metrics(), 'weft_endpoint_ejections_total', { endpoint: bad.address }), 1)
})

test('a per-try timeout retries a gRPC call only when retryOn names deadline-exceeded', async () => {
  let calls = 0
  const slowThenFast = (): grpc.UntypedServiceImplementation => ({ ...ledgerImpl('x'), Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
    calls++
    setTimeout(() => cb(null, { id: call.request.id, from: calls === 1 ? 'slow' : 'fast', amount: 0 }), calls === 1 ? 1000 : 0)
  } })
  const eps = [await ledger(slowThenFast()), await ledger(slowThenFast())]
  const off = await clientOf(eps, { retries: { perTryTimeout: '100ms' } })
  const err = (await get(off.client, { id: 'a' }).catch((e) => e)) as grpc.ServiceError
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED, 'default retryOn: the timed-out try is the answer')
  assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_UPSTREAM_TIMEOUT')
  calls = 0
  const on = await clientOf(eps, { retries: { perTryTimeout: '100ms', retryOn: ['unavailable', 'deadline-exceeded'] } })
  assert.equal((await get(on.client, { id: 'b' })).from, 'fast', 'retryOn deadline-exceeded: the second try answered')
  assert.equal(calls, 2)
})

test('mesh.close() drains a meshed gRPC server: the call in flight finishes, then the server is gone', async () => {
  const server = await createMesh({ service: 'ledger', logger: quiet, config: [], inbound: { shedding: false, drainTimeoutMs: 5000 } })
  let entered!: () => void
  const inside = new Promise<void>((r) => (entered = r))
  const l = await startMeshedLedger(server, { ...ledgerImpl('drain'), Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
    entered()
    setTimeout(() => cb(null, { id: call.request.id, from: 'drain', amount: 0 }), 150)
  } })
  const { client } = await clientOf([l], { retries: { attempts: 0 } })
  const inFlight = get(client, { id: 'in-flight' })
  await inside
  const closed = server.close()
  assert.equal((await inFlight).id, 'in-flight', 'the call in flight finished during the drain')
  await closed
  await sleep(10)
  const err = (await get(client, { id: 'after' }, { deadline: Date.now() + 2000 }).catch((e) => e)) as grpc.ServiceError
  assert.equal(err.code, grpc.status.UNAVAILABLE, 'after close the server takes no calls')
})
