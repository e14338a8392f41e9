// weft/express: `app.use(weft(mesh))`. A thin adapter: it hands each request to the mesh's inbound
// core (deadline, shedding, telemetry, identity, authz, request context) and runs the rest of the
// app behind it. The route template for metrics is Express's own (`req.baseUrl + req.route.path`),
// read when the response has finished, so `/users/42` is counted as `/users/:id`.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Mesh } from '../../src/mesh.js'
import { invalidArg } from '../../src/errors/index.js'
import type { FrontEnd, InboundCall } from '../../src/inbound/call.js'
import { admittedUpgrade, gateUpgrades } from '../../src/http/upgrade.js'
import { requestContext } from '../../src/inbound/context.js'
import { answerHealth, closeAfterResponse, markResponse, refuseTooManyHeaders, writeError } from '../../src/http/server.js'
import type { Done } from '../../src/stack/layer.js'

/** The parts of Express's request this adapter reads (no runtime import of express). */
interface ExpressRequest extends IncomingMessage {
  originalUrl?: string
  baseUrl?: string
  route?: { path?: unknown }
  app?: { router?: { stack?: unknown } }
}

type Next = (err?: unknown) => void

interface ExpressIo {
  req: ExpressRequest
  res: ServerResponse
  next: Next
}

interface RouterLayer {
  route?: unknown
  rawPath?: unknown
  handle?: { stack?: unknown; router?: { stack?: unknown } }
}

/** Route object → its full template, mount paths included (bounded by the app's routes). */
const templates = new WeakMap<object, string>()

function mountPath(layer: RouterLayer): string {
  const p = layer.rawPath
  if (typeof p !== 'string' || p === '/') return ''
  return p.endsWith('/') ? p.slice(0, -1) : p
}

/** The mount paths (patterns, as written in app.use) leading to `route`, or undefined if not found. */
function findMounts(stack: unknown, route: object, depth: number): string[] | undefined {
  if (!Array.isArray(stack) || depth > 16) return undefined
  for (const layer of stack as RouterLayer[]) {
    if (layer.route === route) return []
    const inner = layer.handle?.stack ?? layer.handle?.router?.stack
    if (inner === undefined) continue
    const rest = findMounts(inner, route, depth + 1)
    if (rest) return [mountPath(layer), ...rest]
  }
  return undefined
}

/**
 * The route template of the request: the mount patterns from the app's router down to the matched
 * route, plus its path ("/orgs/:org/users/:id"). `req.baseUrl` cannot be used: it holds the matched
 * values ("/orgs/acme") and a router resets it when an error leaves it. Found once per route.
 */
function routeTemplate(req: ExpressRequest): string {
  const route = req.route as ({ path?: unknown } & object) | undefined
  if (!route || typeof route.path !== 'string') return ''
  let t = templates.get(route)
  if (t === undefined) {
    const mounts = findMounts(req.app?.router?.stack, route, 0)
    // Not reachable from the app's router (an unusual mount): the matched base is the best left.
    t = `${mounts ? mounts.join('') : req.baseUrl ?? ''}${route.path}` || '/'
    templates.set(route, t)
  }
  return t
}

const expressFrontEnd: FrontEnd = {
  proceed(call: InboundCall, done: Done<InboundCall>): void {
    const { req, res, next } = call.io as ExpressIo
    res.on('close', () => {
      call.statusCode = res.statusCode
      call.route = routeTemplate(req)
      done(null, call)
    })
    // next() runs the rest of the app synchronously from here, so its handlers (and their async
    // work) run inside the request context.
    requestContext.run(call.context, next)
  },
  closeAfter(call: InboundCall): void {
    closeAfterResponse((call.io as ExpressIo).res)
  },
}

/** Express middleware putting the mesh's inbound stack in front of the app: `app.use(weft(mesh))`. */
export function weft(mesh: Mesh): (req: ExpressRequest, res: ServerResponse, next: Next) => void {
  if (typeof (mesh as { inbound?: unknown })?.inbound !== 'object') invalidArg('mesh', 'weft(mesh) needs the Mesh returned by createMesh()')
  const core = mesh.inbound
  const onRejected = (err: Error, call: InboundCall): void => writeError((call.io as ExpressIo).res, core.errorResponse(err, call))
  // The server of the last request: Express gives the middleware no server before its first
  // request (app.listen makes it), so an app that skipped mesh.secure(server) gets the upgrade gate
  // here, late. Node hands an upgrade request to the app as a plain request (through this
  // middleware) while the server has no 'upgrade' listener; if one was there already, upgrades
  // before this first request went past the mesh: a warning says so.
  let lastServer: Server | undefined
  const gateLate = (server: Server): void => {
    lastServer = server
    if (gateUpgrades(core, server) && server.listenerCount('upgrade') > 0) {
      mesh.logger.warn('weft/express: this server was not given to mesh.listen or mesh.secure; its upgrade (WebSocket) requests go through the mesh from its first request on, and any before it did not: call mesh.secure(server) right after listen()')
    }
  }
  return function weftMiddleware(req, res, next) {
    const server = (req.socket as { server?: Server }).server
    if (server !== lastServer && server !== undefined) gateLate(server)
    // RELIABILITY B5: 431 past 1000 header fields (one length compare), whether or not the app's
    // server went through mesh.secure; node keeps up to its maxHeadersCount (2000 unset).
    if (refuseTooManyHeaders(req, res) || answerHealth(core, req, res)) return
    // An upgrade the server's gate admitted, routed back into the app (express-ws): run once.
    const upgraded = admittedUpgrade(req)
    if (upgraded) return void requestContext.run(upgraded, next)
    markResponse(core, req, res)
    const url = req.originalUrl ?? req.url ?? '/'
    core.run(core.begin(req.method ?? 'GET', url, req.headers, expressFrontEnd, { req, res, next } satisfies ExpressIo, req.socket), onRejected)
  }
}
