// The connection pool for one endpoint. Its origin is the service's logical name, not the
// endpoint's address, so undici writes "host: payments" from a header line it builds once per
// pool; a Host header passed per request costs header validation and a server-name check on
// every call. A connector that dials the endpoint's own address makes that possible.
import { Pool, buildConnector } from 'undici'
import type { Endpoint } from '../discovery/endpoint.js'

/** HTTP/1.1 keep-alive (faster than h2 on loopback and LAN for small requests). */
const KEEP_ALIVE_MS = 10_000
const CONNECT_TIMEOUT_MS = 5_000

const connect = buildConnector({ timeout: CONNECT_TIMEOUT_MS })

export function endpointPool(e: Endpoint, service: string): Pool {
  return new Pool(`http://${service}`, {
    keepAliveTimeout: KEEP_ALIVE_MS,
    connect: (opts, callback) => connect({ ...opts, hostname: e.host, host: e.address, port: String(e.port) }, callback),
  })
}
