// Edge cases a review found and fixed: a cancel (or any non-OK status) that arrives while a message
// read ahead waits unread still ends the call; a message written during a retry's back-off that
// takes the replay log past 64 KiB still reaches the retry with everything before it; grpc-js's
// `parent` option propagates the parent call's cancellation through the mesh; a cancel before
// start and a cancel's status never run inside cancel().
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createMesh } from '../../src/index.js'
import { get, grpc, grpcFixture, ledgerImpl, LedgerClient, ledgerService, startMeshedLedger, type Ledger } from '../helpers/grpc-kit.js'

const { ledger, clientOf, stop } = grpcFixture()
const quiet = { info() {}, warn() {}, error() {} }

test('a server stream cancelled before its first message is read still ends, and frees its slot', async () => {
  const l = await ledger({ ...ledgerImpl('s'), List(call: grpc.ServerWritableStream<any, any>) {
    call.write({ id: 'a', from: 's', amount: 1 }) // and the stream stays open
  } })
  const { client } = await clientOf([l], { concurrencyLimit: 1 })
  const s = client.List({ id: 'x' })
  const ended = new Promise<number>((resolve) => s.on('error', (e: grpc.ServiceError) => resolve(e.code)))
  await sleep(150) // the first message has arrived; nobody reads it
  s.cancel()
  assert.equal(await ended, grpc.status.CANCELLED)
  assert.equal((await get(client, { id: 'next' })).id, 'next', 'the concurrency slot (limit 1) came back')
})

test('a message written during a retry\'s back-off that passes 64 KiB still reaches the retry after the earlier ones', async () => {
  let calls = 0
  const received: number[][] = []
  const l = await ledger({ ...ledgerImpl('s'), Record(call: grpc.ServerReadableStream<any, any>, cb: grpc.sendUnaryData<unknown>) {
    const n = ++calls
    const got: number[] = []
    received.push(got)
    call.on('data', (e: { amount: number }) => {
      got.push(e.amount)
      if (n === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'first attempt fails' })
    })
    call.on('end', () => n > 1 && cb(null, { count: got.length, from: 's' }))
  } })
  const { client } = await clientOf([l], { retries: { backoff: { base: '300ms', max: '300ms' } }, outlierDetection: { consecutive5xx: 1000 } })
  const big = 'x'.repeat(40 * 1024)
  const res = await new Promise<{ count: number }>((resolve, reject) => {
    const w = client.Record(new grpc.Metadata(), {}, (err, r) => (err ? reject(err) : resolve(r)))
    w.write({ id: big, from: 'c', amount: 1 }, () => {
      setTimeout(() => {
        w.write({ id: big, from: 'c', amount: 2 })
        w.end()
      }, 20)
    })
  })
  assert.deepEqual(received.at(-1), [1, 2], 'the retry got both messages, in order')
  assert.equal(res.count, 2)
})

test('grpc-js\'s parent option: cancelling the parent call cancels the mesh call made for it', async () => {
  const server = await createMesh({ service: 'front', logger: quiet, config: [], inbound: { shedding: false } })
  stop(() => server.close())
  let downstreamCancelled = false
  const slow = await ledger({ ...ledgerImpl('slow'), Get(call: grpc.ServerUnaryCall<any, any>) {
    call.on('cancelled', () => (downstreamCancelled = true)) // never answers
  } })
  const downMesh = await createMesh({ service: 'front', logger: quiet, config: [ledgerService('ledger', [{ address: slow.address }])] })
  const down = downMesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  stop(async () => {
    down.close()
    await downMesh.close()
  })
  const front = await startMeshedLedger(server, { ...ledgerImpl('front'), Get(call: grpc.ServerUnaryCall<any, any>) {
    down.Get({ id: 'child' }, new grpc.Metadata(), { parent: call } as grpc.CallOptions, () => {})
  } })
  const plain = new LedgerClient(front.address, grpc.credentials.createInsecure()) as unknown as Ledger
  stop(() => plain.close())
  const c = plain.Get({ id: 'p' }, new grpc.Metadata(), {}, () => {})
  await sleep(150)
  c.cancel()
  for (let i = 0; i < 50 && !downstreamCancelled; i++) await sleep(20)
  assert.equal(downstreamCancelled, true, 'the downstream call was cancelled with its parent')
})

test('a cancel\'s status reaches the caller after cancel() returns, never inside it', async () => {
  const l = await ledger({ ...ledgerImpl('s'), Get() {} })
  const { client } = await clientOf([l])
  let inside = true
  const seen = new Promise<boolean>((resolve) => {
    const c = client.Get({ id: 'x' }, new grpc.Metadata(), {}, () => resolve(inside))
    setTimeout(() => {
      c.cancel()
      inside = false
    }, 50)
  })
  assert.equal(await seen, false)
})
