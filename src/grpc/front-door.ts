// The port of a meshed gRPC server under a daemon: a node:net server of the mesh's own, whose
// connections grpc-js serves through connection injectors (grpc-js ≥ 1.11,
// Server#createConnectionInjector). Each connection is sorted by the instance's mTLS mode read when
// it arrives — so a PeerAuthentication or MeshConfig pushed later applies to the next connection,
// without binding again — and, outside DISABLE, by its first byte (0x16 starts a TLS handshake):
//   TLS (STRICT, PERMISSIVE)        → the mTLS injector: grpc-js's certificate-provider credentials
//                                     (the SVID, the bundle, a client certificate required)
//   plaintext in PERMISSIVE         → the insecure injector (no peer identity)
//   plaintext in STRICT             → closed, counted as a refusal (reason "plaintext")
//   DISABLE                         → the insecure injector, nothing inspected (as the HTTP front
//                                     door): a TLS client fails there at HTTP/2's preface
// grpc-js then runs everything else as on a bound port: the interceptor reads the client
// certificate from the TLS socket (getAuthContext) and the local port from the socket
// (getConnectionInfo), and tryShutdown/forceShutdown cover the injectors' sessions.
import { createServer, type Server as NetServer, type Socket } from 'node:net'
import type { ConnectionInjector, Server, ServerCredentials } from '@grpc/grpc-js'
import type { MtlsMode } from '../config/types.js'
import type { FrontDoorRefusal } from '../http/tls-front-door.js'
import { firstByte, remoteOf, TLS_HANDSHAKE } from '../identity/first-byte.js'

/** What the listener asks the mesh, per connection. */
export interface GrpcFrontDoorSecurity {
  /** The mode of this instance's servers now. */
  mode(): MtlsMode
  /** The instance holds a certificate (without one a TLS connection cannot be served). */
  hasCertificate(): boolean
  /** A connection was refused: counted and logged by the mesh. */
  refused(reason: FrontDoorRefusal, detail: string, remote: string): void
}

/** After the drain and forceShutdown, how long the listener's own close may take before it is left. */
const CLOSE_WAIT_MS = 1000

export class GrpcFrontDoor {
  private readonly listener: NetServer
  private readonly tls: ConnectionInjector
  private readonly plain: ConnectionInjector
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
  constructor(server: Server, tlsCredentials: ServerCredentials, insecure: ServerCredentials, private readonly sec: GrpcFrontDoorSecurity) {
    this.tls = server.createConnectionInjector(tlsCredentials)
    this.plain = server.createConnectionInjector(insecure)
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
    if (mode === 'DISABLE') return this.plain.injectConnection(socket)
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
      if (mode === 'PERMISSIVE') return this.plain.injectConnection(socket)
      // No HTTP/2 answer: grpc-js clients report a closed connection as UNAVAILABLE.
      this.sec.refused('plaintext', 'plaintext connection to a STRICT mTLS gRPC server', remoteOf(socket))
      socket.destroy()
    }, () => this.sec.refused('timeout', 'no bytes within 10 s', remoteOf(socket)))
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
  }

  /**
   * After forceShutdown (which closed the injectors' HTTP/2 servers and sessions with the bound
   * ones'): any socket still open — a TLS handshake that had not finished when the drain began, so
   * grpc-js had no session for it — is destroyed, and the listener's close awaited.
   */
  async destroy(): Promise<void> {
    this.stopAccepting()
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
    let timer: NodeJS.Timeout | undefined
    await Promise.race([this.closed, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)).unref())])
    clearTimeout(timer)
  }
}
