// node:tls options from an instance's SVID and trust bundle: the server side (client certificate
// required, SVID checked after the handshake) and the client side (the server's SPIFFE ID must be
// the destination's, M5). Built once per certificate or bundle update, never per connection.
import { constants } from 'node:crypto'
import { createSecureContext, type ConnectionOptions, type PeerCertificate, type SecureContext, type SecureContextOptions, type TLSSocket } from 'node:tls'
import type { MtlsMode } from '../config/types.js'
import { WeftError } from '../errors/index.js'
import type { TrustBundle } from './bundle.js'
import { sameSpiffeId, type SpiffeId } from './spiffe-id.js'
import { checkSvid } from './svid-check.js'
import { setVerifiedPeer } from './verified-peer.js'

/** What TLS is built from; a new object on every change (caches are keyed by the object). */
export interface TlsMaterial {
  /** The leaf first, then intermediates. */
  readonly certChainPem: readonly string[]
  /** PKCS#8 PEM private key of the leaf. */
  readonly keyPem: string
  readonly bundle: TrustBundle
}

/** Options for `tls.createServer` (or a tls.Server handed raw sockets with `emit('connection')`). */
export interface ServerTlsOptions extends SecureContextOptions {
  readonly requestCert: true
  readonly rejectUnauthorized: true
}

/** Client connections to one destination share one options object per material. */
const CLIENT_OPTIONS_MAX_DESTINATIONS = 1024

const contextOptionsCache = new WeakMap<TlsMaterial, SecureContextOptions>()
const contextCache = new WeakMap<TlsMaterial, SecureContext>()
const clientOptionsCache = new WeakMap<TlsMaterial, Map<string, ConnectionOptions>>()

/**
 * `tls.createSecureContext` options (chain, key, the bundle as `ca`), for `tls.createServer`,
 * `server.setSecureContext()` or grpc-js. Session tickets are off: every handshake verifies the
 * peer's certificate again, so a session from before a root was retired cannot be resumed (F13).
 */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  let options = contextOptionsCache.get(material)
  if (!options) {
    if (material.certChainPem.length === 0) throw new WeftError('WEFT_ERR_INVALID_ARG', 'invalid TLS material: certChainPem is empty')
    options = Object.freeze({
      cert: material.certChainPem.join('\n'),
      key: material.keyPem,
      ca: [...material.bundle.roots],
      minVersion: 'TLSv1.2' as const,
      secureOptions: constants.SSL_OP_NO_TICKET,
    })
    contextOptionsCache.set(material, options)
  }
  return options
}

/**
 * The secure context of `material`, made once per material (both server and client sides use it):
 * a new certificate or bundle is a new material, hence a new context.
 * @throws WeftError WEFT_ERR_INVALID_ARG when node:tls refuses it (say, the key does not match).
 */
export function serverSecureContext(material: TlsMaterial): SecureContext {
  let ctx = contextCache.get(material)
  if (!ctx) {
    try {
      ctx = createSecureContext(secureContextOptions(material))
    } catch (err) {
      throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid TLS material: ${(err as Error).message}`, { cause: err })
    }
    contextCache.set(material, ctx)
  }
  return ctx
}

/**
 * Server-side TLS options for an mTLS mode, for a `tls.Server` (`tls.createServer(options)`, then
 * `server.setSecureContext(secureContextOptions(next))` on every update). STRICT and PERMISSIVE are
 * the same here: a TLS connection must always present a certificate whose chain verifies
 * (PERMISSIVE only adds plaintext, the front door's business, as in Istio). Follow the handshake
 * with `verifyClientPeer`.
 *
 * Use a tls.Server, not a bare `new TLSSocket(raw, { isServer: true, ... })`: node applies
 * rejectUnauthorized and sets `authorized` only for sockets a tls.Server made; a bare server
 * socket completes the handshake whatever the chain (verifyClientPeer then refuses it).
 * @throws WeftError WEFT_ERR_INVALID_ARG for DISABLE (no TLS is served).
 */
export function serverTlsOptions(material: TlsMaterial, mode: MtlsMode): ServerTlsOptions {
  if (mode === 'DISABLE') throw new WeftError('WEFT_ERR_INVALID_ARG', 'invalid option mode: DISABLE serves no TLS', { details: { option: 'mode' } })
  return { ...secureContextOptions(material), requestCert: true, rejectUnauthorized: true }
}

/**
 * After a server-side handshake: the client's SPIFFE ID, or why it is refused (the caller then
 * destroys the socket before reading anything). Fails closed on a socket with no chain verdict.
 */
export function verifyClientPeer(socket: TLSSocket, trustDomain: string): SpiffeId | string {
  if (!socket.authorized) {
    if (socket.authorizationError) return `the client certificate did not verify against the trust bundle (${String(socket.authorizationError)})`
    // A bare server-side TLSSocket never gets a verdict from node (see serverTlsOptions).
    return 'no chain verification result on this socket: server sockets must come from a tls.Server with requestCert and rejectUnauthorized'
  }
  const cert = socket.getPeerX509Certificate()
  if (!cert) return 'the client sent no certificate'
  const result = checkSvid(cert, { trustDomain, role: 'client' })
  return result.ok ? result.id : `client certificate refused: ${result.reason}`
}

/**
 * Why a tls.Server refused a connection, for its `'tlsClientError'` event: node reports a chain it
 * rejected (rejectUnauthorized) only as "socket hang up", but leaves OpenSSL's verdict on the socket.
 * @example tlsServer.on('tlsClientError', (err, socket) => log(handshakeRefusal(err, socket)))
 */
export function handshakeRefusal(err: Error, socket: TLSSocket | undefined): string {
  const verdict = socket?.authorizationError
  return verdict ? `the client certificate did not verify against the trust bundle (${String(verdict)})` : err.message
}

/**
 * `tls.connect` options for a connection to a server that must be `expectedServerId`: our SVID,
 * the bundle, and a `checkServerIdentity` that ignores the hostname and checks the server's SVID
 * (role server) and its SPIFFE ID. A mismatch fails the handshake with a WeftError
 * WEFT_ERR_UNAUTHENTICATED naming both IDs. The object is frozen and shared: spread it
 * (`{ ...clientTlsOptions(m, id), host, port }`). Never add a `session`: node skips
 * checkServerIdentity on a resumed session.
 */
export function clientTlsOptions(material: TlsMaterial, expectedServerId: SpiffeId): ConnectionOptions {
  let byDestination = clientOptionsCache.get(material)
  if (!byDestination) {
    byDestination = new Map()
    clientOptionsCache.set(material, byDestination)
  }
  const key = expectedServerId.toString()
  let options = byDestination.get(key)
  if (!options) {
    options = Object.freeze({
      secureContext: serverSecureContext(material),
      rejectUnauthorized: true,
      // node calls this only after OpenSSL verified the chain, and SKIPS it on a resumed session.
      // NO_TICKET on our context does not stop a client resuming against a server that issues
      // tickets: a caller must never pass a `session` with these options (the mesh's connectors
      // keep no session cache, maxCachedSessions: 0), or the SPIFFE check would not run.
      checkServerIdentity: (_hostname: string, cert: PeerCertificate) => {
        const err = serverIdentityError(cert, expectedServerId)
        setVerifiedPeer(err ? undefined : cert)
        return err
      },
    })
    if (byDestination.size >= CLIENT_OPTIONS_MAX_DESTINATIONS) byDestination.clear()
    byDestination.set(key, options)
  }
  return options
}

function serverIdentityError(cert: PeerCertificate, expected: SpiffeId): Error | undefined {
  if (!cert?.raw) return unauthenticated(`the server sent no certificate (expected ${expected.toString()})`, expected, undefined)
  const result = checkSvid(cert, { trustDomain: expected.trustDomain, role: 'server' })
  if (!result.ok) return unauthenticated(`server certificate refused (expected ${expected.toString()}): ${result.reason}`, expected, undefined)
  if (!sameSpiffeId(result.id, expected)) {
    return unauthenticated(`the server is ${result.id.toString()}, expected ${expected.toString()}`, expected, result.id)
  }
  return undefined
}

function unauthenticated(message: string, expected: SpiffeId, got: SpiffeId | undefined): WeftError {
  return new WeftError('WEFT_ERR_UNAUTHENTICATED', message, { details: { expected: expected.toString(), got: got?.toString() } })
}
