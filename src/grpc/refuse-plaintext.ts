// A plaintext gRPC client refused by a STRICT server gets an answer, not a bare reset: a reset reads
// as UNAVAILABLE in every gRPC client, which says nothing about why and invites retries. The mesh
// speaks just enough HTTP/2 on the refused socket (a node:http2 plaintext server that never
// listens; the socket is emitted into it) to answer every stream trailers-only with the error
// table's gRPC status for WEFT_ERR_UNAUTHENTICATED, a grpc-message naming the rule (mTLS mode
// STRICT) and the WEFT code under the key the mesh uses for its codes (weft-error-code), as the
// HTTP front door answers one JSON 401 (src/http/tls-front-door.ts, refusePlaintext). The session
// is then closed (GOAWAY once the streams already sent are answered), and lasts REFUSED_SESSION_MS
// at most whatever the client does. A client that does not speak HTTP/2 fails the connection
// preface: nghttp2 closes the session, so it just gets closed.
import { constants, createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2'
import type { Socket } from 'node:net'
import { ERROR_TABLE } from '../errors/codes.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'

/** A refused session is destroyed after this long, answered or not. */
export const REFUSED_SESSION_MS = 5000

const CODE = 'WEFT_ERR_UNAUTHENTICATED'

/**
 * grpc-message is percent-encoded (gRPC over HTTP/2: anything outside printable ASCII, and '%').
 * This one is printable ASCII with no '%': sent as is.
 */
export const STRICT_REFUSAL_MESSAGE = 'this server requires mTLS (mode STRICT): plaintext refused. Call it through a mesh that has an identity, or set a PeerAuthentication with mtls PERMISSIVE for this service.'

const TRAILERS_ONLY = {
  [constants.HTTP2_HEADER_STATUS]: 200,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
  'grpc-status': String(ERROR_TABLE[CODE].grpc),
  'grpc-message': STRICT_REFUSAL_MESSAGE,
  [ERROR_CODE_HEADER]: CODE,
}

/** The refusing HTTP/2 endpoint of one gRPC front door. */
export class PlaintextRefusal {
  private server: Http2Server | undefined
  private readonly sessions = new Set<ServerHttp2Session>()

  /**
   * Answers every gRPC call on `socket` (plaintext, its first chunk back in its buffer, paused)
   * with UNAUTHENTICATED, then closes it. The caller counted the refusal.
   */
  refuse(socket: Socket): void {
    socket.on('error', () => {})
    this.http2().emit('connection', socket)
  }

  /** Destroys the refused sessions still open (the front door is closing). */
  destroy(): void {
    for (const s of this.sessions) s.destroy()
    this.sessions.clear()
  }

  private http2(): Http2Server {
    if (this.server) return this.server
    // Few streams a session: each gets its answer at once, and the session closes after the first.
    const server = createServer({ settings: { maxConcurrentStreams: 16 } })
    server.on('session', (session: ServerHttp2Session) => {
      this.sessions.add(session)
      const timer = setTimeout(() => session.destroy(), REFUSED_SESSION_MS)
      timer.unref()
      session.on('error', () => {})
      session.once('close', () => {
        clearTimeout(timer)
        this.sessions.delete(session)
      })
    })
    server.on('stream', (stream: ServerHttp2Stream) => {
      stream.on('error', () => {})
      if (!stream.headersSent) stream.respond(TRAILERS_ONLY, { endStream: true })
      // The request body (if any) is read and dropped; the session closes once the streams the
      // client already sent (in the same read, say) are answered: a GOAWAY, then the socket.
      stream.resume()
      const session = stream.session
      if (session && !session.closed) {
        setImmediate(() => {
          if (!session.closed) session.close()
        })
      }
    })
    server.on('sessionError', () => {})
    this.server = server
    return server
  }
}
