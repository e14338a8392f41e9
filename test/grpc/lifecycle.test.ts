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

test('mesh.close() shuts down a meshed gRPC server that never received a call', async () => {
  const server = await createMesh({ service: 'ledger', logger: quiet, config: [] })
  const l = await startMeshedLedger(server, ledgerImpl('idle'))
  await server.close()
  const { connect } = await import('node:net')
  const refused = await new Promise<string>((resolve) => {
    const s = connect(l.port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve('connected')
    })
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
  })
  assert.equal(refused, 'ECONNREFUSED', 'the port no longer listens (it kept the process alive before)')
})

test('P2C peak-EWMA steers gRPC calls away from a slow endpoint, as for HTTP', async () => {
  const hits: Record<string, number> = { fast: 0, slow: 0 }
  const endpoint = (name: string, delayMs: number): grpc.UntypedServiceImplementation => ({ ...ledgerImpl(name), Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
    hits[name]!++
    setTimeout(() => cb(null, { id: call.request.id, from: name, amount: 0 }), delayMs)
  } })
  // Peak-EWMA takes a slow answer at once but lets a fast one in over its decay window (10 s), so
  // in a short run the slow endpoint must be slower than the 30 ms every endpoint starts from.
  const { client } = await clientOf([await ledger(endpoint('fast', 0)), await ledger(endpoint('slow', 150))])
  for (let i = 0; i < 50; i++) await Promise.all(Array.from({ length: 4 }, (_, j) => get(client, { id: `${i}-${j}` })))
  const share = hits.slow! / (hits.fast! + hits.slow!)
  assert.ok(share < 0.1, `the endpoint 150 ms slower got ${(share * 100).toFixed(1)} % of 200 calls (a fair share is 50 %)`)
})

test('a new gRPC client connects to every endpoint of its service before its first call (warm channels)', async () => {
  const eps = [await ledger(ledgerImpl('a')), await ledger(ledgerImpl('b')), await ledger(ledgerImpl('c'))]
  const { mesh } = await clientOf(eps)
  const endpoints = mesh.snapshot!.lookup('ledger')!.runtime.endpoints.list()
  const states = (): number[] => endpoints.map((e) => (e.grpcChannel as grpc.Channel | undefined)?.getConnectivityState(false) ?? -1)
  for (let i = 0; i < 100 && !states().every((s) => s === grpc.connectivityState.READY); i++) await sleep(20)
  assert.deepEqual(states(), [2, 2, 2], 'all three channels READY with no call made')
})

test('the circuit breaker opens on a gRPC service that keeps failing, then calls fail fast with WEFT_ERR_CIRCUIT_OPEN', async () => {
  let calls = 0
  const down = await ledger({ ...ledgerImpl('down'), Get(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
    calls++
    cb({ code: grpc.status.UNAVAILABLE, details: 'down' })
  } })
  const { client } = await clientOf([down], { retries: { attempts: 0 }, circuitBreaker: { consecutiveFailures: 3, halfOpenAfter: '30s' }, outlierDetection: { consecutive5xx: 1000 } })
  for (let i = 0; i < 3; i++) await assert.rejects(get(client, { id: String(i) }), { code: grpc.status.UNAVAILABLE, details: 'down' })
  const err = (await get(client, { id: 'fast' }).catch((e) => e)) as grpc.ServiceError
  assert.equal(err.code, grpc.status.UNAVAILABLE)
  assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_CIRCUIT_OPEN')
  assert.equal(calls, 3, 'the fourth call never reached the server')
})
