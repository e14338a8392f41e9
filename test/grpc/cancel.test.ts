// A caller cancelling gRPC calls: before the response (the attempt is stopped, the call ends
// CANCELLED with WEFT_ERR_CANCELLED) and in the middle of a stream (the stream ends CANCELLED).
// Neither leaks the call's concurrency slot, and the meshed server records the cancel.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMesh } from '../../src/index.js'
import { metricValue } from '../helpers/mesh.js'
import { get, grpc, grpcFixture, ledgerImpl, LedgerClient, ledgerService, startMeshedLedger, type Entry, type Ledger } from '../helpers/grpc-kit.js'

const { stop } = grpcFixture()
const quiet = { info() {}, warn() {}, error() {} }

test('cancelled calls end CANCELLED, free their concurrency slot, and the server counts the cancel', async () => {
  const server = await createMesh({ service: 'ledger', logger: quiet, config: [], inbound: { shedding: false } })
  stop(() => server.close())
  let streamed = 0
  const l = await startMeshedLedger(server, {
    ...ledgerImpl('slow'),
    Get(call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<unknown>) {
      const t = setTimeout(() => cb(null, { id: call.request.id, from: 'slow', amount: 0 }), call.request.delay_ms)
      call.on('cancelled', () => clearTimeout(t))
    },
    List(call: grpc.ServerWritableStream<any, any>) {
      const t = setInterval(() => call.write({ id: String(streamed++), from: 'slow', amount: 0 }), 10)
      call.on('cancelled', () => clearInterval(t))
    },
  })
  // concurrencyLimit 1: a slot leaked by a cancelled call would fail the next call with WEFT_ERR_OVERLOADED.
  const mesh = await createMesh({ service: 'payments', logger: quiet, config: [ledgerService('ledger', [{ address: l.address }], { concurrencyLimit: 1 })] })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  stop(async () => {
    client.close()
    await mesh.close()
  })
  await get(client, { id: 'warm' })

  const err = await new Promise<grpc.ServiceError>((resolve) => {
    const c = client.Get({ id: 'slow', delay_ms: 5000 }, new grpc.Metadata(), {}, (e) => resolve(e!))
    setTimeout(() => c.cancel(), 50)
  })
  assert.equal(err.code, grpc.status.CANCELLED)
  assert.equal(err.metadata.get('weft-error-code')[0], 'WEFT_ERR_CANCELLED')

  const got: Entry[] = []
  const streamErr = await new Promise<grpc.ServiceError>((resolve) => {
    const s = client.List({ id: 's' })
    s.on('data', (e: Entry) => {
      got.push(e)
      if (got.length === 3) s.cancel()
    })
    s.on('error', resolve)
  })
  assert.equal(streamErr.code, grpc.status.CANCELLED)
  assert.ok(got.length >= 3, 'the stream delivered messages before the cancel')

  assert.equal((await get(client, { id: 'after' })).id, 'after', 'the concurrency slot came back after both cancels')
  let cancelled = 0
  for (let i = 0; i < 50 && cancelled < 2; i++) {
    cancelled = metricValue(await server.metrics(), 'rpc_server_duration_seconds_count', { rpc_grpc_status_code: '1' })
    if (cancelled < 2) await sleep(20)
  }
  assert.equal(cancelled, 2, 'the server recorded both calls as CANCELLED')
  const out = await mesh.metrics()
  assert.equal(metricValue(out, 'rpc_client_duration_seconds_count', { rpc_grpc_status_code: '1' }), 2, 'the client recorded both as CANCELLED')
})
