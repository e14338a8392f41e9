// gRPC transparent retry (gRFC A6): a stream the server's HTTP/2 layer refused (RST_STREAM
// REFUSED_STREAM, as a connection closing under a certificate renewal or a drain does) never reached
// the application, so the mesh starts it again once, even with the route's retries off and outside
// its budget. In front of a real grpc-js server sits a node:http2 proxy that refuses the streams we
// tell it to and forwards the rest unchanged.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import { test } from 'node:test'
import { quietMesh, metricValue } from '../helpers/mesh.js'
import { grpcProxy } from '../helpers/grpc-proxy.js'
import { get, grpc, LedgerClient, ledgerImpl, ledgerService, startLedger, type Ledger } from '../helpers/grpc-kit.js'

/** A proxy to `upstream` that refuses the streams for which `refuse(n)` is true (n counts from 1). */
const refusingProxy = (upstream: string, refuse: (n: number) => boolean) =>
  grpcProxy(upstream, (n, stream) => refuse(n) && (stream.close(http2.constants.NGHTTP2_REFUSED_STREAM), true))

test('a refused stream is started again once, with the route\'s retries off and no retry counted; refused twice, the call fails UNAVAILABLE', async (t) => {
  const upstream = await startLedger(ledgerImpl('ledger-a'))
  // Refuses the 1st stream, and the 3rd and 4th (the second call, and its transparent retry).
  const proxy = await refusingProxy(upstream.address, (n) => n === 1 || n === 3 || n === 4)
  const mesh = await quietMesh([ledgerService('ledger', [{ address: proxy.address }], { retries: { attempts: 0 } })])
  t.after(async () => {
    await mesh.close()
    await proxy.close()
    upstream.server.forceShutdown()
  })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger

  assert.equal((await get(client, { id: 'a' })).from, 'ledger-a', 'the refused stream was started again and answered')
  assert.equal(proxy.streams, 2)
  await assert.rejects(get(client, { id: 'b' }), (err: Error & { code?: number }) => {
    assert.equal(err.code, grpc.status.UNAVAILABLE)
    assert.match(err.message, /Stream refused by server/)
    return true
  })
  assert.equal(proxy.streams, 4, 'one transparent retry per call, no more')
  assert.equal(metricValue(await mesh.metrics(), 'weft_retries_total'), 0, 'not a retry of the route\'s policy')
})
