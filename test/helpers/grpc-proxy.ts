// A node:http2 proxy in front of a real grpc-js server, for the tests of what a server's HTTP/2
// layer does to a stream (refuse it, hold it): `intercept(n, stream)` sees each stream (n counts
// from 1) and returns true when it dealt with it; the rest are forwarded unchanged, trailers included.
import http2 from 'node:http2'
import type { AddressInfo } from 'node:net'

export async function grpcProxy(upstream: string, intercept: (n: number, stream: http2.ServerHttp2Stream) => boolean) {
  const client = http2.connect(`http://${upstream}`)
  let streams = 0
  const server = http2.createServer()
  const sessions = new Set<http2.ServerHttp2Session>()
  server.on('session', (s) => {
    sessions.add(s)
    s.on('close', () => sessions.delete(s))
  })
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    if (intercept(++streams, stream)) return
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
    /** Streams seen so far. */
    get streams() {
      return streams
    },
    /** Client connections open now. */
    get sessions() {
      return sessions.size
    },
    close: () => {
      client.close()
      const closed = new Promise<void>((r) => server.close(() => r()))
      for (const s of sessions) s.destroy()
      return closed
    },
  }
}
