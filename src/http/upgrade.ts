// Upgrade (WebSocket) and CONNECT requests on a server mesh.listen serves go through the inbound
// stack too. Once an application listens for 'upgrade' (the ws library, socket.io), node emits such
// a request as 'upgrade' instead of 'request', which would skip the server stack: identity,
// AuthorizationPolicy, shedding, deadline, metrics — a DENY on /admin would not hold for
// `Connection: Upgrade` (Envoy's RBAC applies to upgrade requests alike). The gate sits in the
// server's emit, so listeners added after mesh.listen (a WebSocketServer made later) are behind it
// too. An admitted request reaches the application's listeners as node would have delivered it
// (measured as answered 101 when handed over); a refused one is answered on the raw socket with the
// error table's status and JSON body, and the socket closed. Libraries that route an admitted
// upgrade back into the framework (express-ws, @fastify/websocket) reach the adapters' middleware
// with it: they find it in `admittedUpgrade` and run it in its context instead of a second time.
// The inbound core holds each admitted connection until it closes, so a drain waits for it (and
// destroys it past the drain timeout); the mesh's 'draining' event is the application's cue to
// close its WebSockets cleanly first (1001 Going Away).
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Done } from '../stack/layer.js'
import type { FrontEnd, InboundCall } from '../inbound/call.js'
import { requestContext, type InboundContext } from '../inbound/context.js'
import type { ErrorAnswer, InboundCore } from '../inbound/core.js'
import { MAX_REQUEST_HEADERS, TOO_MANY_HEADERS_BODY } from './header-limits.js'

interface UpgradeIo {
  req: IncomingMessage
  socket: Duplex
  /** Delivers the event to the application's listeners (node's own emit). */
  deliver: () => void
  core: InboundCore
}

/** Upgrade requests the gate admitted → their request context (see admittedUpgrade). */
const admitted = new WeakMap<IncomingMessage, InboundContext>()

/** The context of an upgrade request the gate already ran through the stack, if `req` is one. */
export function admittedUpgrade(req: IncomingMessage): InboundContext | undefined {
  return admitted.get(req)
}

class UpgradeFrontEnd implements FrontEnd {
  proceed(call: InboundCall, done: Done<InboundCall>): void {
    const io = call.io as UpgradeIo
    admitted.set(io.req, call.context)
    call.statusCode = 101
    requestContext.run(call.context, io.deliver)
    // The connection is the application's now (or closed, if it refused): drain waits for it.
    io.core.holdUpgraded(io.socket)
    done(null, call)
  }
}

const frontEnd = new UpgradeFrontEnd()
const gated = new WeakSet<Server>()

/** Runs `server`'s upgrade and CONNECT requests through `core` first; false when they already were. */
export function gateUpgrades(core: InboundCore, server: Server): boolean {
  if (gated.has(server)) return false
  gated.add(server)
  const emit = server.emit
  // Every event of the server passes here ('request' per request): `arguments` as is, no array made.
  server.emit = function gate(this: Server, event: string | symbol): boolean {
    // eslint-disable-next-line prefer-rest-params
    if (event !== 'upgrade' && event !== 'connect') return emit.apply(this, arguments as unknown as Parameters<Server['emit']>)
    // eslint-disable-next-line prefer-rest-params
    const args = Array.prototype.slice.call(arguments) as [string, IncomingMessage, Duplex, Buffer]
    const req = args[1]
    const socket = args[2]
    // RELIABILITY B5 as for any request (server.ts refuseTooManyHeaders): 431 past 1000 fields.
    if (req.rawHeaders.length > MAX_REQUEST_HEADERS * 2) {
      writeRawError(socket, { status: 431, headers: { 'content-type': 'text/plain' }, body: TOO_MANY_HEADERS_BODY })
      return true
    }
    const io: UpgradeIo = { req, socket, deliver: () => void emit.apply(this, args as unknown as Parameters<Server['emit']>), core }
    const call = core.begin(req.method ?? 'GET', req.url ?? '/', req.headers, frontEnd, io, req.socket)
    core.run(call, (err, c) => writeRawError(socket, core.errorResponse(err, c)))
    return true
  } as Server['emit']
  return true
}

/** An HTTP/1.1 answer written on a socket no ServerResponse owns, then the socket closed. */
export function writeRawError(socket: Duplex, a: ErrorAnswer): void {
  if (socket.destroyed) return
  const headers: Record<string, string | number> = { ...a.headers, 'content-length': Buffer.byteLength(a.body), connection: 'close' }
  let head = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? ''}\r\n`
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`
  socket.end(`${head}\r\n${a.body}`)
}
