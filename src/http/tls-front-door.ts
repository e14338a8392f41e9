// The mTLS front door of a meshed node:http server: every new connection is sorted by its first
// byte (0x16 starts a TLS handshake) and, by the instance's mTLS mode, wrapped in TLS with the
// current SVID and a required, checked client certificate, served as plaintext, or refused. The
// server keeps its own listen/address/close: only its 'connection' listeners are put behind this,
// so the same code serves node:http, Express's app.listen and Fastify's server — and node:https
// servers (Fastify's `https`), whose own certificate is then used only in DISABLE mode.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { createServer as createTlsServer, Server as TlsServerClass, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls'
import type { MtlsMode } from '../config/types.js'
import { setPeer, type PeerIdentity } from '../identity/peer.js'

/** What the front door asks the mesh, per connection (so a rotation or a mode change applies to the next one). */
export interface FrontDoorSecurity {
  /** The mode for this server now. DISABLE: plaintext only, nothing is inspected. */
  mode(): MtlsMode
  /**
   * The server's TLS context options (its SVID and the trust bundle; the same object until either
   * changes); undefined before the first SVID.
   */
  contextOptions(): SecureContextOptions | undefined
  /** Checks the client's leaf once the handshake (chain against the bundle) is done. */
  verifyPeer(socket: TLSSocket): PeerIdentity | string
  /** A connection was refused: counted and logged by the mesh. */
  refused(reason: FrontDoorRefusal, detail: string, remote: string): void
}

export type FrontDoorRefusal = 'plaintext' | 'no-certificate' | 'handshake' | 'peer-identity' | 'timeout'

/** A connection that has sent nothing (or not finished its handshake) by then is closed. */
const FIRST_BYTES_TIMEOUT_MS = 10_000
const TLS_HANDSHAKE = 0x16

type ConnectionListener = (socket: Socket) => void

const ATTACHED = Symbol.for('weft.frontDoor')

/**
 * Puts the front door before `server`'s connection handling. Call before the server accepts its
 * first connection (right after listen() returns is early enough: connections arrive on a later
 * turn). Idempotent per server.
 */
export function attachFrontDoor(server: Server, sec: FrontDoorSecurity): void {
  const marked = server as Server & { [ATTACHED]?: true }
  if (marked[ATTACHED]) return
  marked[ATTACHED] = true
  const inner = server.listeners('connection') as ConnectionListener[]
  server.removeAllListeners('connection')
  // The server as it was (DISABLE): an https server's own TLS with its own certificate.
  const asBefore = (socket: Socket): void => {
    for (const l of inner) l.call(server, socket)
  }
  // Where a socket to serve HTTP on goes once the mesh has dealt with TLS. An https server's
  // 'connection' listener is node's TLS handshake (a second one on a decrypted socket would fail);
  // its HTTP handler listens on 'secureConnection' and serves any socket, so mesh TLS (or
  // PERMISSIVE plaintext) goes there and the server's own certificate is not used.
  const toHttp = server instanceof TlsServerClass
    ? (socket: Socket): void => {
        for (const l of server.listeners('secureConnection') as ConnectionListener[]) l.call(server, socket)
      }
    : asBefore
  const tls = new TlsTerminator(sec, toHttp)
  server.on('connection', (socket: Socket) => {
    const mode = sec.mode()
    if (mode === 'DISABLE') return asBefore(socket)
    firstByte(socket, (b) => {
      if (b === TLS_HANDSHAKE) return tls.accept(socket)
      if (mode === 'PERMISSIVE') {
        // The first chunk was put back into the socket's buffer and the socket paused: node:http
        // reads buffered data through 'data' events, so flowing must resume once it listens.
        toHttp(socket)
        socket.resume()
        return
      }
      refusePlaintext(socket, sec)
    }, () => sec.refused('timeout', 'no bytes within 10 s', remoteOf(socket)))
  })
}

/** Reads the first chunk, puts it back, and tells its first byte (undefined: closed first). */
function firstByte(socket: Socket, then: (b: number) => void, onTimeout: () => void): void {
  const timer = setTimeout(() => {
    cleanup()
    onTimeout()
    socket.destroy()
  }, FIRST_BYTES_TIMEOUT_MS)
  timer.unref()
  const cleanup = (): void => {
    clearTimeout(timer)
    socket.off('data', onData)
    socket.off('error', onGone)
    socket.off('close', onGone)
  }
  const onGone = (): void => {
    cleanup()
    socket.destroy()
  }
  const onData = (chunk: Buffer): void => {
    cleanup()
    socket.pause()
    socket.unshift(chunk)
    then(chunk[0]!)
  }
  socket.on('data', onData)
  socket.on('error', onGone)
  socket.on('close', onGone)
}

/**
 * TLS for one server: a tls.Server that never listens. Raw sockets are handed to it, so node's own
 * server-side handshake runs (it alone applies requestCert/rejectUnauthorized and sets
 * `authorized`); a new certificate or bundle swaps its context with setSecureContext, which leaves
 * open connections alone.
 */
class TlsTerminator {
  private server: TlsServer | undefined
  private options: SecureContextOptions | undefined

  constructor(private readonly sec: FrontDoorSecurity, private readonly forward: (s: Socket) => void) {}

  accept(socket: Socket): void {
    const options = this.sec.contextOptions()
    if (!options) {
      this.sec.refused('no-certificate', 'this instance has no certificate yet', remoteOf(socket))
      socket.destroy()
      return
    }
    const server = this.serverFor(options)
    server.emit('connection', socket)
  }

  private serverFor(options: SecureContextOptions): TlsServer {
    if (this.server && options === this.options) return this.server
    if (this.server) {
      this.server.setSecureContext(options)
      this.options = options
      return this.server
    }
    // requestCert + rejectUnauthorized: the client must present a certificate whose chain verifies
    // against the trust bundle; the SPIFFE checks on the leaf follow in verifyPeer.
    const server = createTlsServer({ ...options, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['http/1.1'], handshakeTimeout: FIRST_BYTES_TIMEOUT_MS })
    server.on('secureConnection', (tls: TLSSocket) => {
      const peer = this.sec.verifyPeer(tls)
      if (typeof peer === 'string') {
        this.sec.refused('peer-identity', peer, remoteOf(tls))
        tls.destroy()
        return
      }
      setPeer(tls, peer)
      this.forward(tls)
    })
    server.on('tlsClientError', (err: Error, tls: TLSSocket) => {
      this.sec.refused(/timed? ?out/i.test(err.message) ? 'timeout' : 'handshake', err.message, remoteOf(tls))
      tls.destroy()
    })
    this.server = server
    this.options = options
    return server
  }
}

/**
 * STRICT and a plaintext client: answer one HTTP error saying why, then close. A bare reset would
 * leave the caller guessing; this names the mode and the fix.
 */
function refusePlaintext(socket: Socket, sec: FrontDoorSecurity): void {
  sec.refused('plaintext', 'plaintext connection to a STRICT mTLS server', remoteOf(socket))
  const body = JSON.stringify({ error: { code: 'WEFT_ERR_UNAUTHENTICATED', message: 'this server requires mTLS (mode STRICT): plaintext refused. Call it through a mesh that has an identity, or set a PeerAuthentication with mtls PERMISSIVE for this service.', requestId: '' } })
  socket.on('error', () => {})
  socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json; charset=utf-8\r\nweft-error-code: WEFT_ERR_UNAUTHENTICATED\r\nconnection: close\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  socket.destroySoon()
}

function remoteOf(socket: Socket): string {
  return `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`
}
