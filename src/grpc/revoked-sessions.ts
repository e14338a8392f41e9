// Ends the HTTP/2 sessions of a meshed gRPC server whose client identity was revoked (RELIABILITY
// M8). grpc-js keeps a session whatever happens to its peer's identity later and exposes no list of
// sessions, so its (private, long-standing) `http2Servers` map — every http2 server it serves,
// bound ports and connection injectors alike, each with its open sessions — is read here. Each
// session's socket is the TLS socket of an mTLS connection (or a plaintext one, which has no
// certificate and is left alone). A revoked client's session gets a GOAWAY (calls in flight may
// finish) and is destroyed after END_GRACE_MS. Were grpc-js to drop the map, nothing would be ended
// here (undefined is returned), and new calls of the revoked identity would still be refused by
// the server interceptor's peer check (test/identity-mesh/revocation-grpc.test.ts would fail first).
import type { Server } from '@grpc/grpc-js'
import type { Http2Session } from 'node:http2'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import { END_GRACE_MS } from '../identity/plaintext-watch.js'

interface GrpcServerInternals {
  http2Servers?: Map<unknown, { sessions?: Set<Http2Session> }>
}

/**
 * Ends every session of `server` whose client certificate `revoked` refuses (it answers why);
 * `ended` is told of each. Returns how many, or undefined when grpc-js's sessions cannot be read.
 */
export function endRevokedSessions(server: Server, revoked: (cert: PeerCertificate) => string | undefined, ended: (why: string, remote: string) => void): number | undefined {
  const servers = (server as unknown as GrpcServerInternals).http2Servers
  if (!(servers instanceof Map)) return undefined
  let n = 0
  for (const info of servers.values()) {
    if (!(info?.sessions instanceof Set)) continue
    for (const session of info.sessions) {
      if (session.closed || session.destroyed) continue
      const socket = session.socket as TLSSocket | undefined
      if (typeof socket?.getPeerCertificate !== 'function') continue
      const cert = socket.getPeerCertificate()
      if (!cert?.raw) continue
      const why = revoked(cert)
      if (!why) continue
      n++
      ended(why, `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`)
      session.close()
      setTimeout(() => {
        if (!session.destroyed) session.destroy()
      }, END_GRACE_MS).unref()
    }
  }
  return n
}
