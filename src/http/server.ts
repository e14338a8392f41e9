// The node:http front end of the inbound core (mesh.listen): the server's own 'request' listeners
// become the application behind the server stack. Also writes health answers and mesh-generated
// errors for the node:http-shaped adapters (Express shares these helpers).
import { closePendingConnections } from './tls-front-door.js'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Done } from '../stack/layer.js'
import type { FrontEnd, InboundCall } from '../inbound/call.js'
import { requestContext } from '../inbound/context.js'
import type { ErrorAnswer, HealthAnswer, InboundCore } from '../inbound/core.js'
import { LOAD_HEADER } from '../balance/endpoint-stats-layer.js'
import { gateUpgrades } from './upgrade.js'
import { MAX_REQUEST_HEADERS, TOO_MANY_HEADERS_BODY } from './header-limits.js'

export interface ListenOptions {
  port: number
  host?: string
  /** Maps a request to its route template ("/users/:id") for metrics; default: none (''). */
  route?: (req: IncomingMessage) => string
}

interface NodeIo {
  req: IncomingMessage
  res: ServerResponse
}

type App = (req: IncomingMessage, res: ServerResponse) => void

export function writeHealth(res: ServerResponse, a: HealthAnswer): void {
  res.writeHead(a.status, { 'content-type': a.contentType, 'content-length': Buffer.byteLength(a.body), 'cache-control': 'no-store' })
  res.end(a.body)
}

export function writeError(res: ServerResponse, a: ErrorAnswer): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  res.writeHead(a.status, { ...a.headers, 'content-length': Buffer.byteLength(a.body) })
  res.end(a.body)
}

/** Writes a health answer, waiting for it when it is a promise (/metrics). */
export function sendHealth(res: ServerResponse, a: HealthAnswer | Promise<HealthAnswer>): void {
  if (a instanceof Promise) a.then((x) => writeHealth(res, x), (err: Error) => writeHealth(res, { status: 500, contentType: 'text/plain', body: `${err.message}\n` }))
  else writeHealth(res, a)
}

/** Answers a health path if `url` is one; true when it did. */
export function answerHealth(core: InboundCore, req: IncomingMessage, res: ServerResponse): boolean {
  const h = core.health(req.method ?? 'GET', req.url ?? '/')
  if (h === undefined) return false
  sendHealth(res, h)
  return true
}

/** Drain: the client is asked to close the connection once this response is done. */
export function closeAfterResponse(res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('connection', 'close')
  res.shouldKeepAlive = false
}

/**
 * Marks an inbound response: the load report when this connection has not carried the current
 * sample yet (LoadMonitor.reportOn), and `connection: close` while draining.
 */
export function markResponse(core: InboundCore, req: IncomingMessage, res: ServerResponse): void {
  const load = core.monitor.reportOn(req.socket)
  if (load !== undefined) res.setHeader(LOAD_HEADER, load)
  if (core.draining) res.setHeader('connection', 'close')
}

class NodeFrontEnd implements FrontEnd {
  constructor(
    private readonly app: App,
    private readonly routeOf: ((req: IncomingMessage) => string) | undefined,
  ) {}

  proceed(call: InboundCall, done: Done<InboundCall>): void {
    const { req, res } = call.io as NodeIo
    // A response emits 'close' once (after it ends, or when the client goes away); on() skips
    // once()'s wrapper and removal, measurable per request.
    res.on('close', () => {
      call.statusCode = res.statusCode
      call.route = this.routeOf ? this.routeOf(req) : ''
      done(null, call)
    })
    requestContext.run(call.context, this.app, req, res)
  }

  closeAfter(call: InboundCall): void {
    closeAfterResponse((call.io as NodeIo).res)
  }
}

/** RELIABILITY B5 (header-limits.ts): re-exported for the adapters and tests that import it here. */
export { MAX_REQUEST_HEADERS }
const MAX_RAW_HEADERS = MAX_REQUEST_HEADERS * 2

/**
 * Node keeps one field past the limit (so a request over it is seen, and no more than that is
 * kept), unless the application set `maxHeadersCount` itself (then its count applies, silently).
 */
function capHeaderCount(server: Server): void {
  if (server.maxHeadersCount === null || server.maxHeadersCount === undefined) server.maxHeadersCount = MAX_REQUEST_HEADERS + 1
}

/**
 * Answers 431 (and closes the connection) when node kept more than MAX_REQUEST_HEADERS fields of
 * the request; true when it did. One length compare: node has already counted them.
 */
export function refuseTooManyHeaders(req: IncomingMessage, res: ServerResponse): boolean {
  if (req.rawHeaders.length <= MAX_RAW_HEADERS) return false
  res.writeHead(431, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(TOO_MANY_HEADERS_BODY), connection: 'close' })
  res.end(TOO_MANY_HEADERS_BODY)
  return true
}

/**
 * `server`'s request listeners as one function (called with the server as `this`, as node does).
 * Through Function.prototype: an Express app is a listener whose own `bind` is the HTTP BIND route.
 */
function appOf(server: Server): App {
  const listeners = server.listeners('request') as App[]
  server.removeAllListeners('request')
  return listeners.length === 1 ? (Function.prototype.bind.call(listeners[0]!, server) as App) : (req, res) => {
    for (const l of listeners) Reflect.apply(l, server, [req, res])
  }
}

const guarded = new WeakSet<Server>()

/**
 * The header-count limit for a server the mesh does not serve itself (mesh.secure: Express's
 * app.listen, Fastify's server): its request listeners, as they are now, run behind the check.
 * mesh.listen makes the check in its own listener instead.
 */
export function guardHeaderCount(server: Server): void {
  // No listener yet (secure() called before the app was attached): nothing to put the check in
  // front of, and a wrapper of none would answer 431 while the app, added later, answered too.
  if (guarded.has(server) || server.listenerCount('request') === 0) return
  guarded.add(server)
  capHeaderCount(server)
  const app = appOf(server)
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!refuseTooManyHeaders(req, res)) app(req, res)
  })
}

/** Node's default `server.keepAliveTimeout`. */
const NODE_KEEP_ALIVE_MS = 5_000
/** What mesh.listen raises it to; the Keep-Alive hint callers see (undici keeps a connection for the hint less 2 s). */
export const MESH_KEEP_ALIVE_MS = 65_000

/**
 * Mesh callers reuse connections. With Node's default 5 s hint, undici closes an idle connection
 * after 3 s, so traffic with pauses longer than that pays a new connection each burst: over mTLS a
 * full handshake, ~2 ms of CPU on the caller and ~1.5 ms on the server (bench/tls-handshake.ts).
 * 65 s is the value long used for servers behind load balancers with a 60 s idle timeout. A value
 * the application set itself is left alone.
 */
function keepConnectionsWarm(server: Server): void {
  if (server.keepAliveTimeout === NODE_KEEP_ALIVE_MS) server.keepAliveTimeout = MESH_KEEP_ALIVE_MS
}

/** Puts the inbound stack in front of `server`'s request listeners and starts listening. */
export async function listenWithMesh(core: InboundCore, server: Server, opts: ListenOptions): Promise<AddressInfo> {
  keepConnectionsWarm(server)
  capHeaderCount(server)
  const app = appOf(server)
  const frontEnd = new NodeFrontEnd(app, opts.route)
  const onRejected = (err: Error, call: InboundCall): void => writeError((call.io as NodeIo).res, core.errorResponse(err, call))
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (refuseTooManyHeaders(req, res) || answerHealth(core, req, res)) return
    markResponse(core, req, res)
    core.run(core.begin(req.method ?? 'GET', req.url ?? '/', req.headers, frontEnd, { req, res } satisfies NodeIo, req.socket), onRejected)
  })
  gateUpgrades(core, server)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return server.address() as AddressInfo
}

/** Stops accepting, waits for in-flight requests (drain), then closes what is left. */
export async function closeServer(server: Server, drained: Promise<unknown>): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()))
  server.closeIdleConnections()
  closePendingConnections(server)
  await drained
  server.closeAllConnections()
  await closed
}
