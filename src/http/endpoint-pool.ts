// The connection pool for one endpoint. Its origin is the service's logical name, not the
// endpoint's address, so undici writes "host: payments" from a header line it builds once per
// pool; a Host header passed per request costs header validation and a server-name check on
// every call. A connector that dials the endpoint's own address makes that possible. The same
// connector decides, per new connection, whether it is mTLS (a mesh endpoint, this instance's
// SVID, the destination's expected SPIFFE ID) or plaintext, so a certificate renewal or a mode
// change applies to the next connection without touching open ones. An mTLS connection lasts no
// longer than the server's certificate: at its chain's notAfter the pool is retired like on a
// renewal (the mesh closes mTLS pools on every certificate or bundle update), its requests in
// flight finish, and the next request opens a new pool whose handshake checks the server again.
import { Pool, buildConnector } from 'undici'
import type { ConnectionOptions, TLSSocket } from 'node:tls'
import type { Endpoint } from '../discovery/endpoint.js'
import { expiryWait, peerChainOf } from '../identity/peer-chain.js'
import { takeVerifiedPeer } from '../identity/verified-peer.js'

/** HTTP/1.1 keep-alive (faster than h2 on loopback and LAN for small requests). */
const KEEP_ALIVE_MS = 10_000
const CONNECT_TIMEOUT_MS = 5_000

const connect = buildConnector({ timeout: CONNECT_TIMEOUT_MS })

/** How the next connection to an endpoint is made (see MeshIdentity.connectPlan). */
export type ConnectPlan = { tls: false } | { tls: true; options: ConnectionOptions } | { error: Error }
export type PlanConnection = (e: Endpoint) => ConnectPlan

// One TLS connector per options object (one per certificate and expected identity). No session
// cache: the mesh's contexts issue no tickets (every handshake checks the peer's SVID again, and a
// session from before a root was retired must not resume), so caching would only hold memory.
const tlsConnectors = new WeakMap<ConnectionOptions, buildConnector.connector>()

function tlsConnector(options: ConnectionOptions): buildConnector.connector {
  let c = tlsConnectors.get(options)
  if (!c) tlsConnectors.set(options, (c = buildConnector({ ...options, timeout: CONNECT_TIMEOUT_MS, maxCachedSessions: 0 } as buildConnector.BuildOptions)))
  return c
}


export function endpointPool(e: Endpoint, service: string, plan?: PlanConnection): Pool {
  // Closes this pool once its requests are done and lets the next request make a new one.
  const retire = (): void => {
    if (e.pool === pool) e.pool = undefined
    void pool.close().catch(() => {})
  }
  const pool: Pool = new Pool(`http://${service}`, {
    keepAliveTimeout: KEEP_ALIVE_MS,
    connect: (opts, callback) => {
      const p = plan && e.mtls ? plan(e) : undefined
      if (!p || ('tls' in p && !p.tls)) return connect({ ...opts, hostname: e.host, host: e.address, port: String(e.port) }, callback)
      if ('error' in p) return callback(p.error, null)
      return tlsConnector(p.options)({ ...opts, protocol: 'https:', hostname: e.host, host: e.address, port: String(e.port), servername: undefined }, (err, socket) => {
        if (!err && socket) retireAtExpiry(socket as TLSSocket, retire)
        callback(err, socket as never)
      })
    },
  })
  return pool
}

/**
 * Once per connection: at the server chain's notAfter, `retire` the pool (graceful: a request in
 * flight on this connection finishes, none is sent on it after). The timer goes with the socket.
 */
function retireAtExpiry(socket: TLSSocket, retire: () => void): void {
  // The chain our checkServerIdentity was given a moment ago, in this same synchronous run.
  const chain = peerChainOf(takeVerifiedPeer())
  if (!chain) return
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    const left = chain.notAfter - Date.now()
    if (left <= 0) return retire()
    timer = setTimeout(arm, expiryWait(chain.notAfter))
    timer.unref()
  }
  arm()
  socket.once('close', () => clearTimeout(timer))
}
