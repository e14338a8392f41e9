// InboundCore: the framework-neutral server side of the mesh. A front end (mesh.listen for
// node:http, the Express and Fastify adapters) turns each request into an InboundCall with begin(),
// runs it through the server stack with run(), and writes mesh-generated failures with
// errorResponse(). It also answers the health paths and drains in-flight requests on close.
import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { peerOf, type PeerIdentity } from '../identity/peer.js'
import type { Tracer } from '@opentelemetry/api'
import { isWeftError, WeftError } from '../errors/index.js'
import { LOAD_HEADER } from '../balance/endpoint-stats-layer.js'
import { DEADLINE_HEADER } from '../http/transport.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'
import type { MeshMetrics } from '../telemetry/metrics.js'
import type { Logger } from '../util/logger.js'
import { ServerMetrics } from '../telemetry/server-metrics.js'
import { parseTraceparent } from '../telemetry/tracing.js'
import { InFlightCalls } from './in-flight.js'
import { InboundCall, type FrontEnd, type InboundSecurity, type InboundTarget, type ServerHandler } from './call.js'
import { CALLER_HEADER, InboundContext, lastCaller } from './context.js'
import { LoadMonitor, RETRY_AFTER_S, type SheddingSettings } from './load-monitor.js'
import { defaultServerStack, runApplication, type ServerStack } from './server-stack.js'
import type { AccessLog } from '../telemetry/access-log.js'

export interface InboundOptions {
  /** Most requests in the handler at once; more are shed with 503. Default: no limit. */
  maxConcurrent?: number
  /** Event-loop-aware shedding thresholds, or false to turn shedding off. */
  shedding?: SheddingSettings | false
  /** How long close() waits for in-flight requests before closing connections. Default 10 s. */
  drainTimeoutMs?: number
  /**
   * /healthz, /readyz and /metrics. Default: answered on the application's own server. `port`
   * moves them to a separate admin server; `metrics: false` leaves /metrics out; false: none.
   */
  health?: false | { port?: number; host?: string; metrics?: boolean }
}

export const INBOUND_DEFAULTS = { drainTimeoutMs: 10_000 } as const

export interface HealthAnswer {
  status: number
  contentType: string
  body: string
}

export interface ErrorAnswer {
  status: number
  headers: Record<string, string>
  body: string
}

export interface InboundDeps {
  service: string
  namespace: string
  metrics: MeshMetrics
  logger: Logger
  tracer: Tracer
  options: InboundOptions
  ready: () => boolean
  metricsText: () => Promise<string>
  /** Inbound access log, when on. */
  accessLog?: AccessLog
}

const MAX_REQUEST_ID = 128

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}

export class InboundCore {
  readonly monitor: LoadMonitor
  readonly serverMetrics: ServerMetrics
  stack: ServerStack = defaultServerStack()
  /** Requests begun and not yet finished (drain waits for these). */
  private readonly calls = new InFlightCalls()
  /**
   * Upgraded connections (WebSocket) handed to the application, until they close: drain waits for
   * them too, and past its timeout destroys those still open, so close() never hangs on one.
   */
  private readonly upgraded = new Set<Duplex>()
  draining = false
  private readonly admitted = { count: 0 }
  private handler: ServerHandler
  private grpcHandler: ServerHandler | undefined
  private configVersion = 0
  private security: InboundSecurity
  private drained: (() => void) | undefined
  private readonly healthOnApp: boolean
  private readonly metricsOnApp: boolean
  /** Told when serving() may have changed (drain began): the gRPC health service's Watch. */
  private readonly servingListeners = new Set<() => void>()

  constructor(private readonly deps: InboundDeps) {
    this.security = { metrics: deps.metrics, logger: deps.logger }
    this.monitor = new LoadMonitor(deps.options.shedding)
    this.serverMetrics = new ServerMetrics(deps.metrics)
    this.handler = this.build()
    const h = deps.options.health
    this.healthOnApp = h !== false && h?.port === undefined
    this.metricsOnApp = this.healthOnApp && !(h && h.metrics === false)
  }

  get service(): string {
    return this.deps.service
  }

  /** Rebuilds the server handler for a new config version (or an edited stack). */
  rebuild(configVersion: number, stack: ServerStack = this.stack, security: InboundSecurity = this.security): void {
    this.configVersion = configVersion
    this.stack = stack
    this.security = security
    this.handler = this.build()
    this.grpcHandler = undefined
  }

  private build(protocol: 'http' | 'grpc' = 'http'): ServerHandler {
    const m = this.deps.metrics
    const target: InboundTarget = {
      service: this.deps.service,
      namespace: this.deps.namespace,
      configVersion: this.configVersion,
      metrics: this.serverMetrics,
      monitor: this.monitor,
      tracer: this.deps.tracer,
      maxConcurrent: this.deps.options.maxConcurrent ?? Infinity,
      admitted: this.admitted,
      protocol,
      rpcFrom: protocol === 'grpc' ? (source) => m.rpcServerFrom(source) : undefined,
      security: this.security,
      accessLog: this.deps.accessLog,
    }
    return this.stack.build(runApplication, target)
  }

  /**
   * Makes the call for one request: its context (deadline, trace, caller chain) from the headers,
   * its peer identity and local port from the connection.
   */
  begin(method: string, url: string, headers: IncomingHttpHeaders, frontEnd: FrontEnd, io: unknown, socket?: Socket | null): InboundCall {
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const query = q < 0 ? '' : url.slice(q + 1)
    const d = first(headers[DEADLINE_HEADER])
    let deadline = Infinity
    if (d !== undefined) {
      const ms = Number(d)
      if (Number.isFinite(ms)) deadline = performance.now() + Math.max(0, ms)
    }
    return this.makeCall(method, path, headers, deadline, frontEnd, io, peerOf(socket), query, socket?.localPort ?? 0)
  }

  /**
   * Makes the call for one gRPC request: `path` is "/pkg.Service/Method", `deadline` the call's
   * deadline on the Date.now() clock (grpc-timeout; Infinity when none).
   */
  beginGrpc(path: string, headers: IncomingHttpHeaders, deadline: number, frontEnd: FrontEnd, io: unknown, peer?: PeerIdentity, port = 0): InboundCall {
    const d = deadline === Infinity ? Infinity : performance.now() + (deadline - Date.now())
    return this.makeCall('POST', path, headers, d, frontEnd, io, peer, '', port)
  }

  private makeCall(method: string, path: string, headers: IncomingHttpHeaders, deadline: number, frontEnd: FrontEnd, io: unknown, peer: PeerIdentity | undefined, query: string, port: number): InboundCall {
    const parent = parseTraceparent(first(headers.traceparent))
    const chainIn = first(headers[CALLER_HEADER])
    const rid = first(headers['x-request-id'])
    const ctx = new InboundContext(
      this.deps.service,
      deadline,
      parent?.traceId,
      parent ? parent.flags : 1,
      chainIn,
      rid !== undefined && rid.length > 0 && rid.length <= MAX_REQUEST_ID ? rid : undefined,
    )
    // Over mTLS the caller is who its certificate says; the weft-caller header is only a claim.
    const source = this.serverMetrics.sourceLabel(peer?.service ?? lastCaller(chainIn))
    return new InboundCall(method, path, headers, ctx, source, parent, frontEnd, io, peer, query, port)
  }

  /**
   * Runs the call through the server stack. `onRejected` is told when a layer refused the request
   * (the front end writes errorResponse(err) then); the application never ran for it.
   */
  run(call: InboundCall, onRejected: (err: Error, call: InboundCall) => void, handler = this.handler): void {
    this.calls.add(call)
    handler(call, (err) => {
      if (err) onRejected(err, call)
      this.calls.delete(call)
      if (this.drained && this.idle()) this.drained()
    })
  }

  /** Holds an upgraded connection the application took (see `upgraded`) until it closes. */
  holdUpgraded(socket: Duplex): void {
    if (socket.destroyed) return
    this.upgraded.add(socket)
    socket.once('close', () => {
      this.upgraded.delete(socket)
      if (this.drained && this.idle()) this.drained()
    })
  }

  private idle(): boolean {
    return this.calls.size === 0 && this.upgraded.size === 0
  }

  /** run() through the gRPC server stack (built on first use per config version). */
  runGrpc(call: InboundCall, onRejected: (err: Error, call: InboundCall) => void): void {
    this.run(call, onRejected, (this.grpcHandler ??= this.build('grpc')))
  }

  /** Requests begun and not yet finished. */
  get inFlight(): number {
    return this.calls.size
  }

  /** The JSON body, status and headers of a mesh-generated failure, from the error table. */
  errorResponse(err: Error, call: InboundCall | undefined): ErrorAnswer {
    const e = isWeftError(err) ? err : new WeftError('WEFT_ERR_INVALID_ARG', err.message, { cause: err })
    const requestId = call?.context.requestId ?? ''
    const headers: Record<string, string> = {
      'content-type': 'application/json; charset=utf-8',
      [ERROR_CODE_HEADER]: e.code,
      [LOAD_HEADER]: this.monitor.header,
    }
    if (requestId) headers['x-request-id'] = requestId
    if (e.code === 'WEFT_ERR_SERVER_OVERLOADED') headers['retry-after'] = String(RETRY_AFTER_S)
    if (this.draining) headers.connection = 'close'
    return { status: e.httpStatus, headers, body: JSON.stringify({ error: { code: e.code, message: e.message, requestId } }) }
  }

  /** Answers /healthz, /readyz and /metrics when they are served on the app's server. */
  health(method: string, url: string): HealthAnswer | undefined | Promise<HealthAnswer> {
    if (!this.healthOnApp) return undefined
    // Per request: one character tells most paths apart from /healthz, /readyz and /metrics.
    const c = url.charCodeAt(1)
    if (c !== 104 /* h */ && c !== 114 /* r */ && c !== 109 /* m */) return undefined
    if (method !== 'GET' && method !== 'HEAD') return undefined
    return this.answerHealth(url, this.metricsOnApp)
  }

  /** Ready (config loaded, registered) and not draining: /readyz's and gRPC health's answer. */
  serving(): boolean {
    return this.deps.ready() && !this.draining
  }

  /** Calls `fn` when serving() may have changed; returns the unsubscribe. */
  onServingChange(fn: () => void): () => void {
    this.servingListeners.add(fn)
    return () => void this.servingListeners.delete(fn)
  }

  /** Whether health answers are on at all (`inbound.health: false` turns them off). */
  get healthEnabled(): boolean {
    return this.deps.options.health !== false
  }

  /** The health answers themselves (the admin server uses this with every path on). */
  answerHealth(url: string, withMetrics: boolean): HealthAnswer | undefined | Promise<HealthAnswer> {
    if (url === '/healthz') return { status: 200, contentType: 'text/plain', body: 'ok\n' }
    if (url === '/readyz') {
      const ready = this.serving()
      return { status: ready ? 200 : 503, contentType: 'text/plain', body: ready ? 'ready\n' : this.draining ? 'draining\n' : 'not ready\n' }
    }
    if (withMetrics && url === '/metrics') {
      return this.deps.metricsText().then((body) => ({ status: 200, contentType: 'text/plain; version=0.0.4; charset=utf-8', body }))
    }
    return undefined
  }

  /**
   * Stops admitting work gracefully: readiness turns false, responses carry `connection: close`,
   * and the promise settles when in-flight requests and upgraded connections have finished, or
   * when the timeout has passed (upgraded connections still open are destroyed then).
   */
  drain(timeoutMs = this.deps.options.drainTimeoutMs ?? INBOUND_DEFAULTS.drainTimeoutMs): Promise<boolean> {
    this.draining = true
    for (const fn of [...this.servingListeners]) fn()
    this.calls.forEach((call) => call.frontEnd.closeAfter?.(call))
    if (this.idle()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.drained = undefined
        // What the application did not close when told (the mesh's 'draining' event) goes now.
        for (const socket of this.upgraded) socket.destroy()
        resolve(false)
      }, timeoutMs)
      timer.unref()
      this.drained = () => {
        clearTimeout(timer)
        this.drained = undefined
        resolve(true)
      }
    })
  }

  close(): void {
    this.monitor.close()
  }
}
