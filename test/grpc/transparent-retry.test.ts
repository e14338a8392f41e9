// gRPC transparent retry (gRFC A6): a stream the server's HTTP/2 layer refused (RST_STREAM
// REFUSED_STREAM, as a connection closing under a certificate renewal or a drain does) never reached
// the application, so the mesh starts it again once, even with the route's retries off and outside
// its budget. In front of a real grpc-js server sits a node:http2 proxy that refuses the streams we
// tell it to and forwards the rest unchanged.
import assert from 'node:assert/strict'
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { quietMesh, metricValue } from '../helpers/mesh.js'
import { get, grpc, LedgerClient, ledgerImpl, ledgerService, startLedger, type Ledger } from '../helpers/grpc-kit.js'

/** A proxy to `upstream` that refuses the streams for which `refuse(n)` is true (n counts from 1). */
async function refusingProxy(upstream: string, refuse: (n: number) => boolean) {
  const client = http2.connect(`http://${upstream}`)
  let streams = 0
  const server = http2.createServer()
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', (s) => {
    sessions.add(s)
    s.on('close', () => sessions.delete(s))
  })
  server.on('stream', (stream, headers) => {
    const n = ++streams
    stream.on('error', () => {})
    if (refuse(n)) return void stream.close(http2.constants.NGHTTP2_REFUSED_STREAM)
    const { ':method': _m, ':scheme': _s, ':authority': _a, ...rest } = headers
    const up = client.request({ ...rest, ':method': 'POST' }, { waitForTrailers: true })
    stream.pipe(up)
    up.on('wantTrailers', () => up.sendTrailers({}))
    up.on('response', (h) => {
      let trailers: http2.IncomingHttpHeaders | undefined
      up.on('trailers', (t) => (trailers = t))
      stream.respond(h, { waitForTrailers: true })
      stream.on('wantTrailers', () => stream.sendTrailers(Object.fromEntries(Object.entries(trailers ?? {}).filter(([k]) => !k.startsWith(':')))))
      up.pipe(stream)
    })
    up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get streams() {
      return streams
    },
    close: () => {
      client.close()
      const closed = new Promise<void>((r) => server.close(() => r()))
      for (const s of sessions) s.destroy()
      return closed
    },
  }
}

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
