// The mTLS front door of a meshed node:http server: every new connection is sorted by its first
// byte (0x16 starts a TLS handshake) and, by the instance's mTLS mode, wrapped in TLS with the
// current SVID and a required, checked client certificate, served as plaintext, or refused. The
// server keeps its own listen/address/close: only its 'connection' listeners are put behind this,
// so the same code serves node:http, Express's app.listen and Fastify's server — and node:https
// servers (Fastify's `https`), whose own certificate is then used only in DISABLE mode.
// With `watchTrust`, an accepted mTLS connection lasts no longer than its peer's certificate: it is
// ended at the chain's notAfter, and when the trust bundle drops the root it chains to. A plaintext
// connection (served under DISABLE or PERMISSIVE) lasts no longer than the mode allows it: once the
// server's mode is STRICT it is ended like those (src/identity/plaintext-watch.ts), and the
// client's next connection is refused as any new plaintext one.
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { createServer as createTlsServer, Server as TlsServerClass, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls'
import type { MtlsMode } from '../config/types.js'
import { setPeer, type PeerIdentity } from '../identity/peer.js'
import { chainTrusted, expiryWait, peerChainOfX509, rootsOf, type PeerChain } from '../identity/peer-chain.js'
import { FIRST_BYTES_TIMEOUT_MS, firstByte, remoteOf, TLS_HANDSHAKE } from '../identity/first-byte.js'
import { PlaintextWatch } from '../identity/plaintext-watch.js'
import { endHttpConnection } from './connection-end.js'

/**
 * What the front door asks the mesh, per connection (so a rotation or a mode change applies to the
 * next one); the mode also while plaintext connections are open (they end when it is STRICT).
 */
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
  /**
   * A connection was refused (or ended: `expired`, `untrusted`, and `mode-strict` for a plaintext
   * one when the mode became STRICT): counted and logged by the mesh.
   */
  refused(reason: FrontDoorRefusal, detail: string, remote: string): void
  /**
   * Opt-in: open connections follow their peer's certificate. Each accepted mTLS connection is
   * ended at its client chain's notAfter, and whenever `listener` is called (the trust bundle
   * changed) every open connection whose client chain no longer verifies against
   * `contextOptions().ca` is ended. Returns the unsubscribe. Without it, a connection is checked
   * at its handshake only.
   */
  watchTrust?(listener: () => void): () => void
  /**
   * Calls `listener` whenever a new policy is in use (the mode may have changed); returns the
   * unsubscribe. Without it, a server holding plaintext connections polls the mode.
   */
  watchMode?(listener: () => void): () => void
  /**
   * Why a client of this SPIFFE ID may not connect (it is revoked: RELIABILITY M8), else undefined.
   * Asked after the peer check of every handshake, and for every open connection (tracked with
   * watchTrust) whenever `watchRevocations` calls its listener.
   */
  revoked?(peerId: string): string | undefined
  /** Calls `listener` when the revoked identities change (open connections are then checked); returns the unsubscribe. */
  watchRevocations?(listener: () => void): () => void
}

export type FrontDoorRefusal = 'plaintext' | 'no-certificate' | 'handshake' | 'peer-identity' | 'timeout' | 'expired' | 'untrusted' | 'mode-strict' | 'revoked'

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
  const httpHandler = server instanceof TlsServerClass
    ? (socket: Socket): void => {
        for (const l of server.listeners('secureConnection') as ConnectionListener[]) l.call(server, socket)
      }
    : asBefore
  // A connection accepted just before close() sends its first bytes after it: node:http never saw
  // it (closeAllConnections misses it), so it would hold close() open for a keep-alive. A server
  // that stopped listening takes no new connection.
  const toHttp = (socket: Socket): void => {
    if (!server.listening) return void socket.destroy()
    httpHandler(socket)
  }
  const pending = new Set<Socket>()
  pendingByServer.set(server, pending)
  const tls = new TlsTerminator(sec, toHttp, pending)
  const unwatch = sec.watchTrust?.(() => tls.recheck())
  if (unwatch) server.once('close', unwatch)
  const unwatchRevoked = sec.watchRevocations?.(() => tls.recheckRevoked())
  if (unwatchRevoked) server.once('close', unwatchRevoked)
  const plain = plaintextWatch(server, sec)
  server.on('connection', (socket: Socket) => {
    const mode = sec.mode()
    plain.check(mode)
    if (mode === 'DISABLE') {
      plain.add(socket)
      return asBefore(socket)
    }
    // Pending until node:http has it: before its first byte, and through a TLS handshake.
    pending.add(socket)
    socket.once('close', () => pending.delete(socket))
    firstByte(socket, (b) => {
      if (!server.listening) return void socket.destroy()
      if (b === TLS_HANDSHAKE) return tls.accept(socket)
      pending.delete(socket)
      // The mode now, not at accept: it may have become STRICT while the client said nothing.
      if (sec.mode() !== 'STRICT') {
        // The first chunk was put back into the socket's buffer and the socket paused: node:http
        // reads buffered data through 'data' events, so flowing must resume once it listens.
        plain.add(socket)
        toHttp(socket)
        socket.resume()
        return
      }
      refusePlaintext(socket, sec)
    }, () => sec.refused('timeout', 'no bytes within 10 s', remoteOf(socket)))
  })
}

const pendingByServer = new WeakMap<Server, Set<Socket>>()

/**
 * The server's plaintext connections (accepted in DISABLE, or plaintext in PERMISSIVE), ended once
 * its mode is STRICT: each counted and logged as `mode-strict`, then ended as an untrusted mTLS one
 * (idle at once; a response in flight finishes with `connection: close`). An https server's own TLS
 * (DISABLE) counts as plaintext here — no mesh identity — and node:http serves the TLS socket over
 * the raw one, found through its `_parent` (see TlsTerminator).
 */
function plaintextWatch(server: Server, sec: FrontDoorSecurity): PlaintextWatch<Socket> {
  const httpSocket = new WeakMap<Socket, Socket>()
  if (server instanceof TlsServerClass) {
    server.prependListener('secureConnection', (tls: TLSSocket) => {
      const raw = (tls as TLSSocket & { _parent?: Socket })._parent
      if (raw && raw !== tls) httpSocket.set(raw, tls)
    })
  }
  const pushed = sec.watchMode !== undefined
  const watch = new PlaintextWatch<Socket>(() => sec.mode(), (sockets) => {
    for (const s of sockets) {
      if (s.destroyed) continue
      sec.refused('mode-strict', 'this server\'s mTLS mode is now STRICT: the plaintext connection is ended (its next one is refused)', remoteOf(s))
      endHttpConnection(httpSocket.get(s) ?? s)
    }
  }, pushed)
  const unwatchMode = sec.watchMode?.(() => watch.check())
  server.once('close', () => {
    unwatchMode?.()
    watch.stop()
  })
  return watch
}

/**
 * Closes the connections the front door holds that node:http does not know yet (no first byte,
 * or a TLS handshake under way): call with `server.close()`, or close() waits for them.
 */
export function closePendingConnections(server: Server): void {
  const pending = pendingByServer.get(server)
  if (!pending) return
  for (const s of pending) s.destroy()
  pending.clear()
}

/**
 * TLS for one server: a tls.Server that never listens. Raw sockets are handed to it, so node's own
 * server-side handshake runs (it alone applies requestCert/rejectUnauthorized and sets
 * `authorized`); a new certificate or bundle swaps its context with setSecureContext, which leaves
 * open connections alone — those are tracked here instead when the mesh watches trust.
 */
class TlsTerminator {
  private server: TlsServer | undefined
  private options: SecureContextOptions | undefined
  /** Open mTLS connections and what their trust rests on (only with sec.watchTrust). */
  private readonly open = new Map<TLSSocket, Tracked>()
  /** Whether the server's sockets are half-open (http.Server's are), restored after the handshake. */
  private halfOpen = false

  constructor(private readonly sec: FrontDoorSecurity, private readonly forward: (s: Socket) => void, private readonly pending: Set<Socket>) {}

  accept(socket: Socket): void {
    const options = this.sec.contextOptions()
    if (!options) {
      this.sec.refused('no-certificate', 'this instance has no certificate yet', remoteOf(socket))
      socket.destroy()
      return
    }
    const server = this.serverFor(options)
    // http.Server's sockets are half-open: a client that gives up during the handshake (its FIN)
    // would leave the TLS socket open until the handshake timeout. Not half-open until the
    // handshake is done (the TLS socket takes the flag from this socket); HTTP gets it back.
    // (Every socket of one server has the same flag.)
    this.halfOpen = socket.allowHalfOpen
    socket.allowHalfOpen = false
    server.emit('connection', socket)
  }

  /** The trust bundle changed: ends every open connection whose client chain it no longer trusts. */
  recheck(): void {
    const roots = rootsOf(this.sec.contextOptions()?.ca)
    // No certificate here any more (expired unrenewed): that says nothing about the peers.
    if (!roots) return
    for (const [socket, t] of this.open) {
      if (!chainTrusted(t.chain, roots)) this.end(socket, 'untrusted', 'the trust bundle no longer holds the root its client certificate chains to')
    }
  }

  /** The revoked identities changed: ends every open connection whose client is now one of them. */
  recheckRevoked(): void {
    for (const [socket, t] of this.open) {
      const why = this.sec.revoked?.(t.peerId)
      if (why) this.end(socket, 'revoked', `the client ${why}`)
    }
  }

  /**
   * After the handshake and the SPIFFE check (watching trust only): refuses a chain the current
   * bundle does not trust (the bundle changed during its handshake) and arms the expiry timer.
   * False when the connection was refused.
   */
  private track(tls: TLSSocket, chain: PeerChain | undefined, peerId: string): boolean {
    const roots = rootsOf(this.sec.contextOptions()?.ca)
    if (!chain || !roots || !chainTrusted(chain, roots)) {
      const why = !roots ? 'this instance has no certificate any more' : 'the client certificate does not chain to the current trust bundle (it changed during the handshake)'
      this.sec.refused('untrusted', why, remoteOf(tls))
      tls.destroy()
      return false
    }
    const t: Tracked = { chain, peerId, timer: undefined, ending: false }
    this.open.set(tls, t)
    tls.once('close', () => {
      clearTimeout(t.timer)
      this.open.delete(tls)
    })
    this.armExpiry(tls, t)
    return true
  }

  private armExpiry(tls: TLSSocket, t: Tracked): void {
    const left = t.chain.notAfter - Date.now()
    if (left <= 0) {
      this.end(tls, 'expired', `the client certificate expired at ${new Date(t.chain.notAfter).toISOString()}`)
      return
    }
    t.timer = setTimeout(() => this.armExpiry(tls, t), expiryWait(t.chain.notAfter))
    t.timer.unref()
  }

  /**
   * Ends a connection whose peer is no longer trusted, gracefully where node:http allows (see
   * endHttpConnection: idle at once, a response in flight finishes first, bounded).
   */
  private end(tls: TLSSocket, reason: 'expired' | 'untrusted' | 'revoked', detail: string): void {
    const t = this.open.get(tls)
    if (!t || t.ending) return
    t.ending = true
    clearTimeout(t.timer)
    this.sec.refused(reason, `${detail}; connection ended`, remoteOf(tls))
    t.timer = endHttpConnection(tls)
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
      // Past the handshake: node:http gets it below (its closeAllConnections reaches it from
      // there). `_parent` is the raw socket node's TLSSocket wraps, a long-standing internal;
      // without it the raw socket just stays pending, and close() ends it early.
      const raw = (tls as TLSSocket & { _parent?: Socket })._parent
      if (raw) this.pending.delete(raw)
      // The verified chain through the leaf's issuerCertificate links (peer-chain.ts: ~1 µs, where
      // getPeerCertificate(true) costs tens of µs and more a connection).
      const chain = this.sec.watchTrust ? peerChainOfX509(tls.getPeerX509Certificate()) : undefined
      const peer = this.sec.verifyPeer(tls)
      if (typeof peer === 'string') {
        this.sec.refused('peer-identity', peer, remoteOf(tls))
        tls.destroy()
        return
      }
      const revoked = this.sec.revoked?.(peer.id)
      if (revoked) {
        this.sec.refused('revoked', `the client ${revoked}`, remoteOf(tls))
        tls.destroy()
        return
      }
      if (this.sec.watchTrust && !this.track(tls, chain, peer.id)) return
      tls.allowHalfOpen = this.halfOpen
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

interface Tracked {
  readonly chain: PeerChain
  /** The client's SPIFFE ID (checked again when identities are revoked). */
  readonly peerId: string
  /** The expiry timer, then (once ending) the grace timer. */
  timer: NodeJS.Timeout | undefined
  ending: boolean
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
