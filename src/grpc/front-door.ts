// The port of a meshed gRPC server under a daemon: a node:net server of the mesh's own, whose
// connections grpc-js serves through connection injectors (grpc-js ≥ 1.11,
// Server#createConnectionInjector). Each connection is sorted by the instance's mTLS mode read when
// it arrives — so a PeerAuthentication or MeshConfig pushed later applies to the next connection,
// without binding again — and, outside DISABLE, by its first byte (0x16 starts a TLS handshake):
//   TLS (STRICT, PERMISSIVE)        → the mTLS injector: grpc-js's certificate-provider credentials
//                                     (the SVID, the bundle, a client certificate required)
//   plaintext in PERMISSIVE         → the insecure injector (no peer identity)
//   plaintext in STRICT             → counted as a refusal (reason "plaintext"); each of its calls
//                                     answered UNAUTHENTICATED with weft-error-code
//                                     WEFT_ERR_UNAUTHENTICATED, then closed (refuse-plaintext.ts)
//   DISABLE                         → the insecure injector, nothing inspected (as the HTTP front
//                                     door): a TLS client fails there at HTTP/2's preface
// Plaintext sessions (DISABLE, PERMISSIVE) last no longer than the mode allows them: once the mode
// is STRICT they are counted ("mode-strict") and drained — a GOAWAY, the calls in flight finish
// (END_GRACE_MS at most) — and the client's next connection is refused as any new plaintext one.
// grpc-js then runs everything else as on a bound port: the interceptor reads the client
// certificate from the TLS socket (getAuthContext) and the local port from the socket
// (getConnectionInfo), and tryShutdown/forceShutdown cover the injectors' sessions.
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import type { ConnectionInjector, Server, ServerCredentials } from '@grpc/grpc-js'
import type { MtlsMode } from '../config/types.js'
import type { FrontDoorRefusal } from '../http/tls-front-door.js'
import { firstByte, remoteOf, TLS_HANDSHAKE } from '../identity/first-byte.js'
import { END_GRACE_MS, PlaintextWatch } from '../identity/plaintext-watch.js'
import { PlaintextRefusal } from './refuse-plaintext.js'

/** What the listener asks the mesh, per connection (and the mode while plaintext sessions are open). */
export interface GrpcFrontDoorSecurity {
  /** The mode of this instance's servers now. */
  mode(): MtlsMode
  /** The instance holds a certificate (without one a TLS connection cannot be served). */
  hasCertificate(): boolean
  /** A connection was refused: counted and logged by the mesh. */
  refused(reason: FrontDoorRefusal, detail: string, remote: string): void
  /** Calls `listener` whenever a new policy is in use; returns the unsubscribe (else the mode is polled). */
  watchMode?(listener: () => void): () => void
}

/** After the drain and forceShutdown, how long the listener's own close may take before it is left. */
const CLOSE_WAIT_MS = 1000

export class GrpcFrontDoor {
  private readonly listener: NetServer
  private readonly tls: ConnectionInjector
  /** Plaintext sessions go here; replaced when the mode becomes STRICT (the old one drains). */
  private plain: ConnectionInjector
  private readonly plainWatch: PlaintextWatch<Socket>
  private readonly unwatchMode: (() => void) | undefined
  private readonly refusal = new PlaintextRefusal()
  /** Every accepted socket until it closes (whoever serves it). */
  private readonly sockets = new Set<Socket>()
  /** Accepted sockets before their first byte (nobody serves them yet). */
  private readonly pending = new Set<Socket>()
  private stopped = false
  private closed: Promise<void> | undefined

  /**
   * `tlsCredentials`: mTLS server credentials fed by a certificate provider. Both injectors are
   * made now: a secure one takes its first certificate from the provider a moment after it is made,
   * and a connection it got before that would be dropped.
   */
  constructor(private readonly server: Server, tlsCredentials: ServerCredentials, private readonly insecure: ServerCredentials, private readonly sec: GrpcFrontDoorSecurity) {
    this.tls = server.createConnectionInjector(tlsCredentials)
    this.plain = server.createConnectionInjector(insecure)
    this.plainWatch = new PlaintextWatch<Socket>(() => sec.mode(), (sockets) => this.endPlaintext(sockets), sec.watchMode !== undefined)
    this.unwatchMode = sec.watchMode?.(() => this.plainWatch.check())
    this.listener = createServer((socket) => this.accept(socket))
  }

  /** Listens on host:port (0 picks a free port); resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        this.tls.destroy()
        this.plain.destroy()
        reject(err)
      }
      this.listener.once('error', onError)
      this.listener.listen({ port, host }, () => {
        this.listener.off('error', onError)
        // A failed accept (EMFILE…) must not crash the process; node retries by itself.
        this.listener.on('error', () => {})
        const addr = this.listener.address()
        resolve(typeof addr === 'object' && addr ? addr.port : port)
      })
    })
  }

  private accept(socket: Socket): void {
    if (this.stopped) return void socket.destroy()
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    // Whoever serves it handles its errors; the raw socket must not crash the process meanwhile.
    socket.on('error', () => {})
    const mode = this.sec.mode()
    this.plainWatch.check(mode)
    if (mode === 'DISABLE') return this.servePlain(socket)
    this.pending.add(socket)
    socket.once('close', () => this.pending.delete(socket))
    firstByte(socket, (b) => {
      this.pending.delete(socket)
      if (this.stopped) return void socket.destroy()
      if (b === TLS_HANDSHAKE) {
        if (!this.sec.hasCertificate()) {
          this.sec.refused('no-certificate', 'this instance has no certificate yet', remoteOf(socket))
          return void socket.destroy()
        }
        // The first chunk is back in the socket's buffer: the TLS socket node makes reads it first.
        return this.tls.injectConnection(socket)
      }
      // The mode now, not at accept: it may have become STRICT while the client said nothing.
      if (this.sec.mode() !== 'STRICT') return this.servePlain(socket)
      this.sec.refused('plaintext', 'plaintext connection to a STRICT mTLS gRPC server', remoteOf(socket))
      this.refusal.refuse(socket)
    }, () => this.sec.refused('timeout', 'no bytes within 10 s', remoteOf(socket)))
  }

  private servePlain(socket: Socket): void {
    this.plainWatch.add(socket)
    this.plain.injectConnection(socket)
  }

  /**
   * The mode became STRICT: every plaintext session is drained. They all belong to the plaintext
   * injector, so it is swapped for a new one (for plaintext served again after a later change back)
   * and the old one is drained — each session gets a GOAWAY once (grpc-js's closeSession), calls in
   * flight finish, and what is left after END_GRACE_MS is destroyed — then destroyed itself (its
   * HTTP/2 server closes once its sessions have; it never listened).
   */
  private endPlaintext(sockets: Socket[]): void {
    const open = sockets.filter((s) => !s.destroyed)
    if (open.length === 0 || this.stopped) return
    for (const s of open) this.sec.refused('mode-strict', 'this server\'s mTLS mode is now STRICT: the plaintext HTTP/2 session is drained (its next connection is refused)', remoteOf(s))
    const old = this.plain
    this.plain = this.server.createConnectionInjector(this.insecure)
    old.drain(END_GRACE_MS)
    old.destroy()
  }

  /**
   * The drain begins: the port stops accepting (it is free again) and connections that sent
   * nothing yet are closed. Served connections are left to grpc-js's tryShutdown.
   */
  stopAccepting(): void {
    if (this.stopped) return
    this.stopped = true
    this.closed = new Promise((resolve) => this.listener.close(() => resolve()))
    for (const s of this.pending) s.destroy()
    this.pending.clear()
    this.unwatchMode?.()
    this.plainWatch.stop()
  }

  /**
   * After forceShutdown (which closed the injectors' HTTP/2 servers and sessions with the bound
   * ones'): any socket still open — a TLS handshake that had not finished when the drain began, so
   * grpc-js had no session for it — is destroyed, and the listener's close awaited.
   */
  async destroy(): Promise<void> {
    this.stopAccepting()
    this.refusal.destroy()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)).unref())])
    clearTimeout(timer)
  }
}
