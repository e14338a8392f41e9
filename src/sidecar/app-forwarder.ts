// The sidecar's inbound half: what the mesh admitted (mTLS, AuthorizationPolicy, shedding, metrics
// ran in mesh.listen's stack) is forwarded to the application on its local address, as Envoy's
// inbound listener does: request and response bodies streamed both ways, hop-by-hop headers dropped,
// the caller's verified identity passed as `x-forwarded-client-cert` (Envoy's SANITIZE_SET: a value
// the caller sent is always dropped, so the app can trust the header), WebSocket upgrades spliced.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { connect, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { Pool } from 'undici'
import { WeftError } from '../errors/index.js'
import type { InboundCore } from '../inbound/core.js'
import { peerOf } from '../identity/peer.js'
import { writeError } from '../http/server.js'
import { writeRawError } from '../http/upgrade.js'
import { endToEndHeaders } from './hop-headers.js'
import { relay, splice } from './relay.js'
import { formatHostPort } from '../util/host-port.js'

export const CLIENT_CERT_HEADER = 'x-forwarded-client-cert'

export interface AppForwarder {
  handler: RequestListener
  /** For the server's 'upgrade' event (after the mesh's gate admitted the request). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void
  close(): Promise<void>
}

export function appForwarder(app: { host: string; port: number }, core: InboundCore, ownId: () => string | undefined): AppForwarder {
  const where = formatHostPort(app.host, app.port)
  const origin = `http://${where}`
  const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })

  /** The headers the app gets: the caller's end-to-end ones, its identity when it came over mTLS. */
  const appHeaders = (req: IncomingMessage): Record<string, string | string[]> => {
    const headers = endToEndHeaders(req.headers, [CLIENT_CERT_HEADER])
    const peer = peerOf(req.socket)
    if (peer) headers[CLIENT_CERT_HEADER] = `By=${ownId() ?? ''};URI=${peer.id}`
    const xff = req.headers['x-forwarded-for']
    const addr = req.socket.remoteAddress ?? ''
    headers['x-forwarded-for'] = typeof xff === 'string' && xff !== '' ? `${xff}, ${addr}` : addr
    headers['x-forwarded-proto'] = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'
    return headers
  }

  const appDown = (err: Error): WeftError => new WeftError('WEFT_ERR_CONNECT_FAILED', `the application at ${where} did not answer: ${(err as { code?: string }).code ?? err.message}`, { cause: err, details: { app: where } })

  const handler: RequestListener = (req: IncomingMessage, res: ServerResponse) => {
    relay(req, res, pool, { origin, path: req.url ?? '/', headers: appHeaders(req) }, (err) => writeError(res, core.errorResponse(appDown(err), undefined)))
  }

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const upstream: Socket = connect(app.port, app.host)
    const headers = appHeaders(req)
    // The upgrade itself is end-to-end here: the app must see what the caller asked to switch to.
    headers.connection = 'Upgrade'
    if (req.headers.upgrade) headers.upgrade = req.headers.upgrade
    let line = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`
    for (const [k, v] of Object.entries(headers)) for (const one of Array.isArray(v) ? v : [v]) line += `${k}: ${one}\r\n`
    let connected = false
    upstream.once('connect', () => {
      connected = true
      upstream.write(`${line}\r\n`)
      if (head.length > 0) upstream.write(head)
      // From here the two connections are one: whatever the app answers (101 or a refusal) goes back as is.
      splice(socket, upstream)
    })
    upstream.once('error', (err) => {
      if (!connected) writeRawError(socket, core.errorResponse(appDown(err), undefined))
    })
    // The caller gave up before the app's connection was up.
    socket.once('close', () => {
      if (!connected) upstream.destroy()
    })
    socket.on('error', () => socket.destroy())
  }

  return { handler, upgrade, close: () => pool.close() }
}
