// weft/fastify: `fastify.register(weftPlugin, { mesh })`. A thin adapter: each request goes through
// the mesh's inbound core in an onRequest hook (so a shed or expired request costs no body parsing
// and no handler), the rest of the request runs in its context, and the route template is
// Fastify's own (`request.routeOptions.url`). Built with
// fastify-plugin, so registered at the root it covers every route, and registered inside a plugin
// it covers that plugin's routes only.
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Mesh } from '../../src/mesh.js'
import { invalidArg } from '../../src/errors/index.js'
import type { FrontEnd, InboundCall } from '../../src/inbound/call.js'
import { requestContext, type InboundContext } from '../../src/inbound/context.js'
import type { HealthAnswer } from '../../src/inbound/core.js'
import { LOAD_HEADER } from '../../src/balance/endpoint-stats-layer.js'
import { admittedUpgrade } from '../../src/http/upgrade.js'
import type { Done } from '../../src/stack/layer.js'

export interface WeftPluginOptions {
  mesh: Mesh
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The mesh's request context: deadline, trace id, caller chain, request id. */
    weft: InboundContext | null
  }
}

interface FastifyIo {
  request: FastifyRequest
  reply: FastifyReply
  /** The onRequest hook's continuation. */
  next: () => void
}

const fastifyFrontEnd: FrontEnd = {
  proceed(call: InboundCall, done: Done<InboundCall>): void {
    const { request, reply, next } = call.io as FastifyIo
    // 'close' fires after the response ends and when the client goes away: either way the call
    // is over (the drain count and the metrics need both).
    reply.raw.on('close', () => {
      call.statusCode = reply.raw.statusCode
      call.route = request.routeOptions.url ?? ''
      done(null, call)
    })
    request.weft = call.context
    requestContext.run(call.context, next)
  },
  closeAfter(call: InboundCall): void {
    const { reply } = call.io as FastifyIo
    if (!reply.sent) void reply.header('connection', 'close')
    reply.raw.shouldKeepAlive = false
  },
}

function sendHealth(reply: FastifyReply, a: HealthAnswer): void {
  void reply.code(a.status).header('content-type', a.contentType).header('cache-control', 'no-store').send(a.body)
}

function weft(fastify: FastifyInstance, opts: WeftPluginOptions, pluginDone: (err?: Error) => void): void {
  const mesh = opts?.mesh
  if (typeof (mesh as { inbound?: unknown } | undefined)?.inbound !== 'object') invalidArg('mesh', 'fastify.register(weftPlugin, { mesh }) needs the Mesh returned by createMesh()')
  const core = mesh.inbound
  const onRejected = (err: Error, call: InboundCall): void => {
    const a = core.errorResponse(err, call)
    void (call.io as FastifyIo).reply.code(a.status).headers(a.headers).send(a.body)
  }

  fastify.decorateRequest('weft', null)
  // Under a daemon: the mTLS front door before Fastify's own server (it is made, not yet listening).
  mesh.secure(fastify.server)

  fastify.addHook('onRequest', (request, reply, next) => {
    const h = core.health(request.method, request.url)
    if (h !== undefined) {
      if (h instanceof Promise) h.then((a) => sendHealth(reply, a), (err: Error) => sendHealth(reply, { status: 500, contentType: 'text/plain', body: err.message }))
      else sendHealth(reply, h)
      return
    }
    // An upgrade the server's gate admitted, routed into Fastify (@fastify/websocket): run once.
    const upgraded = admittedUpgrade(request.raw)
    if (upgraded) {
      request.weft = upgraded
      return requestContext.run(upgraded, next)
    }
    const load = core.monitor.reportOn(request.raw.socket)
    if (load !== undefined) void reply.header(LOAD_HEADER, load)
    if (core.draining) void reply.header('connection', 'close')
    core.run(core.begin(request.method, request.url, request.headers, fastifyFrontEnd, { request, reply, next } satisfies FastifyIo, request.raw.socket), onRejected)
  })

  // No second hook to re-enter the context after body parsing: Fastify 5 runs the parser's
  // callbacks in the request's async context (the POST-with-a-late-body test checks it), and a
  // preValidation hook cost a hook call and an AsyncLocalStorage.run per request.

  pluginDone()
}

/** The Fastify plugin: `fastify.register(weftPlugin, { mesh })`. */
export const weftPlugin = fp(weft, { name: 'weft', fastify: '5.x' })
export default weftPlugin
