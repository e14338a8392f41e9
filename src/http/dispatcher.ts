// MeshDispatcher: an undici Dispatcher. A request whose URL host names a service the mesh knows
// goes through that service's compiled client stack; anything else (IPs, localhost, unknown
// names) passes through to a plain undici Agent untouched. setGlobalDispatcher(mesh.dispatcher)
// meshes plain fetch().
import type { Duplex } from 'node:stream'
import { Dispatcher } from 'undici'
import { WeftError } from '../errors/index.js'
import { DEFAULTS } from '../config/defaults.js'
import type { CompiledService, Snapshot } from '../compile.js'
import { OutboundCall, type BodySink, type UpstreamResponse } from '../stack/call.js'
import { toHeaderRecord } from '../util/headers.js'
import { makeCallBody } from './call-body.js'
import { DEADLINE_HEADER } from './transport.js'
import { CALLER_HEADER, requestContext } from '../inbound/context.js'
import { toLegacyHandler, type LegacyHandler } from './user-handler.js'

/** Host of an undici origin ("http://payments:8080" → "payments"), without parsing a URL. */
export function originHost(origin: unknown): string | undefined {
  if (origin === undefined || origin === null) return undefined
  if (typeof origin !== 'string') return (origin as URL).hostname
  const start = origin.indexOf('://')
  let i = start < 0 ? 0 : start + 3
  if (origin[i] === '[') return undefined // IPv6 literal: never a service name
  let end = i
  while (end < origin.length) {
    const ch = origin.charCodeAt(end)
    if (ch === 58 /* : */ || ch === 47 /* / */) break
    end++
  }
  return origin.slice(i, end).toLowerCase()
}

function authorityOf(origin: unknown): string {
  if (typeof origin !== 'string') return (origin as URL).host
  const start = origin.indexOf('://')
  const rest = start < 0 ? origin : origin.slice(start + 3)
  const slash = rest.indexOf('/')
  return slash < 0 ? rest : rest.slice(0, slash)
}

export interface DispatchSource {
  snapshot(): Snapshot | undefined
  isClosed(): boolean
}

export class MeshDispatcher extends Dispatcher {
  constructor(
    private readonly source: DispatchSource,
    private readonly passthrough: Dispatcher,
  ) {
    super()
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const snap = this.source.snapshot()
    const host = originHost(opts.origin)
    const svc = snap && host !== undefined ? snap.lookup(host) : undefined
    if (!svc) return this.passthrough.dispatch(opts, handler)
    const h = toLegacyHandler(handler)
    if (this.source.isClosed()) {
      h.onError?.(new WeftError('WEFT_ERR_CLOSED', `mesh is closed; cannot send to ${host}`))
      return false
    }
    // A tunnel to a mesh service has no meaning a mesh can give it (CONNECT names its own target).
    // Upgrades (WebSocket) go through the stack like any request: see deliverUpgrade.
    if (opts.method === 'CONNECT') {
      h.onError?.(new WeftError('WEFT_ERR_INVALID_ARG', `CONNECT ${host}: a tunnel to a mesh service is not supported; CONNECT to an endpoint address or a proxy directly`))
      return false
    }
    if (opts.upgrade && typeof h.onUpgrade !== 'function') {
      h.onError?.(new WeftError('WEFT_ERR_INVALID_ARG', `${opts.method ?? 'GET'} ${host}: an upgrade request needs a handler with onUpgrade (undici's upgrade(), WebSocket or fetch)`))
      return false
    }
    this.run(snap!, svc, opts, h)
    return true
  }

  private run(snap: Snapshot, svc: CompiledService, opts: Dispatcher.DispatchOptions, h: LegacyHandler): void {
    const method = (opts.method ?? 'GET').toUpperCase()
    const path = opts.path ?? '/'
    const headers = toHeaderRecord(opts.headers)
    // The endpoint's pool sends "host: <service>" itself (its origin is the logical name), so a
    // plain "http://<service>" call adds no header; any other authority is sent as written.
    if (headers.host === undefined && opts.origin !== svc.plainOrigin) headers.host = authorityOf(opts.origin)
    const q = path.indexOf('?')
    const rule = snap.route(svc, { method, pathname: q < 0 ? path : path.slice(0, q), search: q < 0 ? '' : path.slice(q + 1), headers })
    const call = new OutboundCall(method, path, headers, makeCallBody(opts.body, DEFAULTS.replayBufferBytes), opts as unknown as Record<string, unknown>, rule.target)
    const parent = requestContext.getStore()
    call.parent = parent
    // The caller chain is the mesh's to write (a handler that forwards its request's headers
    // would otherwise pass on a chain without itself in it).
    headers[CALLER_HEADER] = parent ? parent.chain : rule.target.source
    const propagated = headers[DEADLINE_HEADER]
    if (propagated !== undefined) {
      const ms = Number(Array.isArray(propagated) ? propagated[0] : propagated)
      if (Number.isFinite(ms) && ms >= 0) call.deadline = call.startedAt + ms
      delete headers[DEADLINE_HEADER]
    } else if (parent !== undefined) call.deadline = parent.deadline
    h.onConnect?.((reason?: Error) => call.cancel(reason ?? new WeftError('WEFT_ERR_CANCELLED', `${method} ${svc.settings.name}${path} aborted by the caller`)))
    rule.handler(call, (err, res) => {
      if (err || !res) {
        const e = err ?? new Error('weft: handler finished without a response')
        call.finish(undefined, e)
        return h.onError?.(e)
      }
      deliver(res, h, call)
    })
  }

  override close(): Promise<void>
  override close(callback: () => void): void
  override close(callback?: () => void): Promise<void> | void {
    const p = Promise.resolve()
    if (callback) void p.then(callback)
    else return p
  }

  override destroy(): Promise<void>
  override destroy(err: Error | null): Promise<void>
  override destroy(callback: () => void): void
  override destroy(err: Error | null, callback: () => void): void
  override destroy(a?: unknown, b?: unknown): Promise<void> | void {
    const cb = typeof a === 'function' ? a : typeof b === 'function' ? b : undefined
    const p = Promise.resolve()
    if (cb) void p.then(cb as () => void)
    else return p
  }
}

/** Hands a committed response to the caller's handler; one object per call, no closures. */
class CallSink implements BodySink {
  constructor(
    private readonly h: LegacyHandler,
    private readonly call: OutboundCall,
    private readonly res: UpstreamResponse,
  ) {}

  onData(chunk: Buffer): boolean {
    return this.h.onData ? this.h.onData(chunk) !== false : true
  }

  onComplete(trailers: Buffer[] | null): void {
    this.call.finish(this.res, undefined)
    this.h.onComplete?.(trailers)
  }

  onError(err: Error): void {
    this.call.finish(this.res, err)
    this.h.onError?.(err)
  }
}

function deliver(res: UpstreamResponse, h: LegacyHandler, call: OutboundCall): void {
  if (call.aborted) {
    res.discard()
    call.finish(undefined, call.aborted)
    h.onError?.(call.aborted)
    return
  }
  call.commit()
  if (res.socket) return deliverUpgrade(res, res.socket, h, call)
  const sink = new CallSink(h, call, res)
  h.onResponseStarted?.()
  try {
    h.onHeaders?.(res.statusCode, res.rawHeaders, res.resume, res.statusText)
  } catch (err) {
    // As undici does with a handler that throws here (undici's upgrade() throws "bad upgrade" for
    // an answer that is not 101): the response is dropped and the handler told through onError.
    res.discard()
    call.finish(res, err as Error)
    h.onError?.(err as Error)
    return
  }
  res.pipe(sink)
}

/**
 * An upgraded connection goes to the caller: the call is over for the mesh (its metrics, limits and
 * breaker count the handshake; the connection's life after it is the application's), and the socket
 * is the caller's to use and close.
 */
function deliverUpgrade(res: UpstreamResponse, socket: Duplex, h: LegacyHandler, call: OutboundCall): void {
  call.finish(res, undefined)
  try {
    h.onUpgrade!(res.statusCode, res.rawHeaders, socket)
  } catch (err) {
    socket.destroy()
    h.onError?.(err as Error)
  }
}
