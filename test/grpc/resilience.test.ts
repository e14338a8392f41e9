// gRPC resilience through the mesh against real grpc-js servers on loopback: failover when an
// endpoint dies mid-run, retries on UNAVAILABLE (with client-stream replay) but never once a
// response message committed the call or the sent messages passed the 64 KiB replay buffer, and
// application statuses passed through untouched.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { metricValue } from '../helpers/mesh.js'
import { chat, collect, get, grpc, ledgerImpl, LedgerClient, ledgerService, record, startLedger, type Entry, type Ledger, type Running , grpcFixture } from '../helpers/grpc-kit.js'

const { ledger, clientOf } = grpcFixture()

const unavailable = { code: grpc.status.UNAVAILABLE, details: 'flaky' }

/** A Ledger whose every method fails with UNAVAILABLE before answering anything; counts calls. */
function flaky(counts: Record<string, number>): grpc.UntypedServiceImplementation {
  const count = (m: string): void => void (counts[m] = (counts[m] ?? 0) + 1)
  return {
    Get(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
      count('Get')
      cb(unavailable)
    },
    List(call: grpc.ServerWritableStream<any, any>) {
      count('List')
      if (call.request.id === 'commit') {
        call.write({ id: 'first', from: 'flaky', amount: 0 })
        setTimeout(() => call.emit('error', { ...unavailable, details: 'after a message' }), 20)
        return
      }
      call.emit('error', unavailable)
    },
    Record(call: grpc.ServerReadableStream<any, any>, cb: grpc.sendUnaryData<unknown>) {
      count('Record')
      call.on('data', () => {})
      call.on('end', () => cb(unavailable))
    },
    Chat(call: grpc.ServerDuplexStream<any, any>) {
      count('Chat')
      call.emit('error', unavailable)
    },
  }
}

test('failover: one of three endpoints dies mid-run and every call still succeeds', async () => {
  const hits: Record<string, number> = { a: 0, b: 0, c: 0 }
  const eps = await Promise.all(['a', 'b', 'c'].map((n) => ledger(ledgerImpl(n, { onCall: () => hits[n]!++ }))))
  const { client } = await clientOf(eps, { loadBalancer: { policy: 'round-robin' } })
  const batch = async (from: number): Promise<Entry[]> => Promise.all(Array.from({ length: 10 }, (_, i) => get(client, { id: String(from + i) })))
  for (let i = 0; i < 5; i++) await batch(i * 10)
  assert.ok(hits.c! > 0, 'c served before it died')
  eps[2]!.server.forceShutdown()
  const cBefore = hits.c!
  const results: Entry[] = []
  for (let i = 5; i < 20; i++) results.push(...(await batch(i * 10)))
  assert.equal(results.length, 150, 'all 150 calls after the death succeeded')
  assert.equal(hits.c, cBefore, 'the dead endpoint served nothing more')
  assert.ok(results.every((r) => r.from === 'a' || r.from === 'b'))
})

test('UNAVAILABLE is retried on another endpoint for every call kind; client-stream messages are replayed', async () => {
  const counts: Record<string, number> = {}
  const bad = await ledger(flaky(counts))
  const good = await ledger(ledgerImpl('good'))
  // Outlier detection would eject the flaky endpoint after 5 failures; keep it in rotation here.
  const { mesh, client } = await clientOf([bad, good], { loadBalancer: { policy: 'round-robin' }, outlierDetection: { consecutive5xx: 1000 } })
  for (let i = 0; i < 10; i++) assert.equal((await get(client, { id: String(i) })).from, 'good')
  for (let i = 0; i < 4; i++) assert.equal((await collect<Entry>(client.List({ id: 'x' }))).length, 3)
  for (let i = 0; i < 4; i++) assert.deepEqual(await record(client, 5), { count: 5, from: 'good' }, 'all five messages reached the endpoint that answered')
  for (let i = 0; i < 4; i++) assert.deepEqual((await chat(client, ['1', '2'])).map((e) => e.id), ['1', '2'])
  assert.ok(counts.Get! >= 1 && counts.List! >= 1 && counts.Record! >= 1 && counts.Chat! >= 1, `the flaky endpoint was tried (${JSON.stringify(counts)})`)
  const text = await mesh.metrics()
  assert.ok(metricValue(text, 'weft_retries_total', { reason: 'unavailable', destination_service: 'ledger' }) >= 4, 'retries are counted with reason "unavailable"')
  assert.equal(metricValue(text, 'rpc_client_duration_seconds_count', { rpc_grpc_status_code: '14' }), 0, 'no call ended UNAVAILABLE')
})

test('a stream that already delivered a message is never retried', async () => {
  const counts: Record<string, number> = {}
  const { client } = await clientOf([await ledger(flaky(counts)), await ledger(flaky(counts))])
  const got: Entry[] = []
  const err = await new Promise<grpc.ServiceError>((resolve) => {
    const s = client.List({ id: 'commit' })
    s.on('data', (e: Entry) => got.push(e))
    s.on('error', resolve)
  })
  assert.equal(err.code, grpc.status.UNAVAILABLE)
  assert.match(err.details, /after a message/)
  assert.deepEqual(got.map((e) => e.id), ['first'], 'the caller got the one message, then the status')
  assert.equal(counts.List, 1, 'one attempt only: the call was committed by its first message')
})

test('client streams are replayed up to 64 KiB; past that the call is not retried', async () => {
  const counts: Record<string, number> = {}
  const { client } = await clientOf([await ledger(flaky(counts)), await ledger(flaky(counts))])
  await assert.rejects(record(client, 5, 10), { code: grpc.status.UNAVAILABLE })
  assert.equal(counts.Record, 3, 'small stream: the first try and both retries (attempts: 2)')
  counts.Record = 0
  await assert.rejects(record(client, 3, 30_000), { code: grpc.status.UNAVAILABLE })
  assert.equal(counts.Record, 1, '90 KB sent: past the replay buffer, so no retry')
})

test('application statuses pass through untouched: not retried, not counted against the endpoint', async () => {
  let calls = 0
  const notFound = await ledger({
    ...ledgerImpl('nf'),
    Get(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
      calls++
      cb({ code: grpc.status.NOT_FOUND, details: 'no such entry' })
    },
  })
  const { mesh, client } = await clientOf([notFound], { outlierDetection: { consecutive5xx: 2 } })
  for (let i = 0; i < 5; i++) {
    await assert.rejects(get(client, { id: 'missing' }), (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND && e.details === 'no such entry' && e.metadata.get('weft-error-code').length === 0)
  }
  assert.equal(calls, 5, 'each call made one attempt')
  const text = await mesh.metrics()
  assert.equal(metricValue(text, 'weft_endpoint_ejections_total'), 0, 'NOT_FOUND is an answer, not an endpoint failure')
  assert.equal(metricValue(text, 'rpc_client_duration_seconds_count', { rpc_grpc_status_code: '5', error_code: '' }), 5)
})

test('retryOn may name other gRPC statuses (resource-exhausted); the default is UNAVAILABLE only', async () => {
  let calls = 0
  const exhausted = (): grpc.UntypedServiceImplementation => ({
    ...ledgerImpl('x'),
    Get(_c: unknown, cb: grpc.sendUnaryData<unknown>) {
      calls++
      cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'quota' })
    },
  })
  const eps = [await ledger(exhausted()), await ledger(exhausted())]
  const plain = await clientOf(eps)
  await assert.rejects(get(plain.client, { id: '1' }), { code: grpc.status.RESOURCE_EXHAUSTED })
  assert.equal(calls, 1, 'default retryOn: RESOURCE_EXHAUSTED is not retried')
  calls = 0
  const tuned = await clientOf(eps, { retries: { attempts: 1, retryOn: ['resource-exhausted'] } })
  await assert.rejects(get(tuned.client, { id: '2' }), { code: grpc.status.RESOURCE_EXHAUSTED })
  assert.equal(calls, 2, 'retryOn: [resource-exhausted] retries it (attempts: 1)')
})
