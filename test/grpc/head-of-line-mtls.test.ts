// RELIABILITY L6 under mTLS: the extra connections the mesh opens to an endpoint whose connection
// is full are made with the endpoint's mTLS credentials, like its first: the server sees each call
// on its own connection (cap of 1 stream a connection), every one with the client's certificate.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { startTestDaemon } from '../helpers/daemon.js'
import { controlMesh, waitEndpoints } from '../helpers/control-kit.js'
import { get, grpc, LedgerClient, ledgerImpl, LedgerService, type Entry, type Ledger } from '../helpers/grpc-kit.js'

const HANG_MS = 5000

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not complete within ${HANG_MS} ms`)), HANG_MS)
  })
  return Promise.race([p, hang]).finally(() => clearTimeout(t))
}

test('over mTLS, a full connection makes the mesh open another with the same credentials; the held streams and the new call each have their own', async (t) => {
  const d = await startTestDaemon()
  t.after(() => d.daemon.close())
  const ledger = await controlMesh(d, 'ledger')
  const held: grpc.ServerWritableStream<any, any>[] = []
  const peers: { method: string; peer: string; cert: boolean }[] = []
  const server = ledger.grpc.server()
  server.addService(LedgerService, {
    ...ledgerImpl('ledger-a', {
      onCall: (method, call: grpc.ServerUnaryCall<any, any>) => void peers.push({ method, peer: call.getPeer(), cert: call.getAuthContext().sslPeerCertificate !== undefined }),
    }),
    List(call: grpc.ServerWritableStream<any, any>) {
      peers.push({ method: 'List', peer: call.getPeer(), cert: call.getAuthContext().sslPeerCertificate !== undefined })
      call.write({ id: `${call.request.id}-0`, from: 'ledger-a', amount: 0 })
      held.push(call)
    },
  })
  await ledger.grpc.listen(server, { port: 0, host: '127.0.0.1' })
  const payments = await controlMesh(d, 'payments')
  payments.grpc.setConnectionLimits({ streamsPerConnection: 1 })
  const client = payments.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    for (const s of held.splice(0)) s.end()
    client.close()
    await payments.close()
    await ledger.close()
  })
  await waitEndpoints(payments, 'ledger', 1)

  const streams = [client.List({ id: 's0' }), client.List({ id: 's1' })]
  const ended = streams.map((s) => new Promise<void>((resolve, reject) => {
    s.on('data', () => {})
    s.once('end', resolve)
    s.once('error', reject)
  }))
  await within(Promise.all(streams.map((s) => new Promise<Entry>((resolve, reject) => {
    s.once('data', resolve)
    s.once('error', reject)
  }))), 'the streams\' first messages')
  const res = await within(get(client, { id: 'unary' }), 'a unary call while the streams are open')
  assert.equal(res.from, 'ledger-a')
  assert.equal(held.length, 2, 'both streams still open when the unary call completed')
  for (const s of held.splice(0)) s.end()
  await within(Promise.all(ended), 'the released streams')

  assert.deepEqual(peers.map((p) => p.method).sort(), ['Get', 'List', 'List'])
  assert.equal(new Set(peers.map((p) => p.peer)).size, 3, `three connections: ${peers.map((p) => p.peer).join(', ')}`)
  assert.ok(peers.every((p) => p.cert), 'every connection is mTLS, with the client\'s certificate')
})
