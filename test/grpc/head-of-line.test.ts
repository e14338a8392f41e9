// RELIABILITY L6, no head-of-line blocking: when long-lived streams take all of the server's
// MAX_CONCURRENT_STREAMS on one connection, a new call does not queue behind them — the mesh opens
// another connection to the endpoint. Once with a server allowing 4 streams (the mesh told so) and
// once at full size with the defaults (100 streams, the mesh's default cap of 100 per connection).
// The bounded waits only guard against a hang; nothing here measures speed.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { get, grpc, grpcFixture, ledgerImpl, startLedger, type Entry } from '../helpers/grpc-kit.js'

const fx = grpcFixture()
const HANG_MS = 5000

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not complete within ${HANG_MS} ms: it is queued behind the held streams (head-of-line blocking)`)), HANG_MS)
  })
  return Promise.race([p, hang]).finally(() => clearTimeout(t))
}

async function holdStreamsThenCall(maxStreams: number, cap?: number, streams = maxStreams): Promise<void> {
  const held: grpc.ServerWritableStream<any, any>[] = []
  const release = (): void => {
    for (const s of held.splice(0)) s.end()
  }
  const l = await startLedger({
    ...ledgerImpl('a'),
    // One message, then the stream stays open until the test releases it.
    List(call: grpc.ServerWritableStream<any, any>) {
      call.write({ id: `${call.request.id}-0`, from: 'a', amount: 0 })
      held.push(call)
    },
  }, { 'grpc.max_concurrent_streams': maxStreams })
  fx.stop(() => l.server.forceShutdown())
  fx.stop(release)
  const { mesh, client } = await fx.clientOf([l])
  if (cap !== undefined) mesh.grpc.setConnectionLimits({ streamsPerConnection: cap })
  await get(client, { id: 'warm' })

  const ended: Promise<void>[] = []
  const firsts: Promise<Entry>[] = []
  for (let i = 0; i < streams; i++) {
    const s = client.List({ id: `s${i}` })
    firsts.push(new Promise((resolve, reject) => {
      s.once('data', resolve)
      s.once('error', reject)
    }))
    const end = new Promise<void>((resolve, reject) => {
      s.on('data', () => {})
      s.once('end', resolve)
      s.once('error', reject)
    })
    end.catch(() => {}) // awaited below; a failed test's cleanup cancels them
    ended.push(end)
  }
  await within(Promise.all(firsts), 'the streams\' first messages')
  assert.equal(held.length, streams, 'every stream is open on the server')

  let streamsDone = false
  void Promise.all(ended).then(() => (streamsDone = true), () => {})
  const res = await within(get(client, { id: 'unary' }), 'a unary call made while the streams are open')
  assert.equal(res.id, 'unary')
  assert.equal(streamsDone, false, 'the unary call completed while the streams were still open')
  assert.equal(held.length, streams, 'no stream was released before the unary call completed')

  release()
  await within(Promise.all(ended), 'the released streams')
  // The connections still work after the streams end.
  assert.equal((await within(get(client, { id: 'after' }), 'a call after the streams')).id, 'after')
}

test('a unary call completes while 4 long-lived streams fill a server\'s MAX_CONCURRENT_STREAMS=4 (mesh cap set to 4)', async () => {
  await holdStreamsThenCall(4, 4)
})

test('L6 at full size: 100 long-lived streams fill MAX_CONCURRENT_STREAMS=100; a unary call still completes (default cap)', async () => {
  await holdStreamsThenCall(100)
})

test('more streams than one extra connection holds: each extra connection is a connection of its own (2 streams a connection, 6 held)', async () => {
  await holdStreamsThenCall(2, 2, 6)
})
