// The terminal client handler: sends one attempt to the chosen endpoint's undici Pool and resolves
// when response headers arrive. The body is held (socket paused) until the retry layer commits to
// this response (pipe) or drops it (discard). undici errors are wrapped into WeftErrors here.
import type { Duplex } from 'node:stream'
import type { Dispatcher } from 'undici'
import { WeftError } from '../errors/index.js'
import type { Endpoint } from '../discovery/endpoint.js'
import { callDetails, type Abortable, type BodySink, type ClientDone, type ClientHandler, type OutboundCall, type UpstreamResponse } from '../stack/call.js'

/** Header carrying the remaining deadline (ms) to the next hop. */
export const DEADLINE_HEADER = 'weft-deadline-ms'

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT', 'ECONNABORTED'])
const RESET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH'])
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** Wraps a transport error from undici or the socket into the error table. */
export function wrapTransportError(err: Error, call: OutboundCall, endpoint: Endpoint): Error {
  // The client's SPIFFE ID check (identity/tls-material) fails the handshake with a WeftError
  // naming expected and presented IDs: for the caller that endpoint's handshake failed, and
  // another endpoint may be the right one.
  if (err instanceof WeftError && err.code === 'WEFT_ERR_UNAUTHENTICATED' && (err.details as { expected?: unknown } | undefined)?.expected !== undefined) {
    return new WeftError('WEFT_ERR_TLS_HANDSHAKE', `${call.target.service.name}: mTLS handshake with ${endpoint.address} failed: ${err.message}`, { cause: err, details: callDetails(call, { endpoint: endpoint.address, cause: err.message }) })
  }
  if (err instanceof WeftError) return err
  const code = (err as { code?: string }).code ?? ''
  const svc = call.target.service.name
  const details = () => callDetails(call, { endpoint: endpoint.address, cause: code || err.message })
  if (CONNECT_CODES.has(code)) return new WeftError('WEFT_ERR_CONNECT_FAILED', `${svc}: cannot connect to ${endpoint.address} (${code})`, { cause: err, details: details() })
  if (RESET_CODES.has(code)) return new WeftError('WEFT_ERR_UPSTREAM_RESET', `${svc}: ${endpoint.address} closed the connection (${code}: ${err.message})`, { cause: err, details: details() })
  if (TIMEOUT_CODES.has(code)) return new WeftError('WEFT_ERR_UPSTREAM_TIMEOUT', `${svc}: ${endpoint.address} timed out (${code})`, { cause: err, details: details() })
  if (isTlsFailure(code, err)) return new WeftError('WEFT_ERR_TLS_HANDSHAKE', `${svc}: mTLS handshake with ${endpoint.address} failed: ${err.message}`, { cause: err, details: details() })
  return err
}

/** Node's TLS and OpenSSL failures (ERR_TLS_*, ERR_SSL_*, certificate verification codes), and our SPIFFE ID check's. */
function isTlsFailure(code: string, err: Error): boolean {
  return code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || code === 'WEFT_ERR_TLS_HANDSHAKE' || /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code) || (err as { library?: string }).library === 'SSL routines'
}

const noop = (): void => {}
const DROP: BodySink = { onData: () => true, onComplete() {}, onError() {} }

/** One attempt: an undici legacy dispatch handler that is also the UpstreamResponse. */
class Attempt implements UpstreamResponse, Abortable {
  statusCode = 0
  statusText = ''
  rawHeaders: Buffer[] = []
  private abortFn: ((err: Error) => void) | undefined
  private reason: Error | undefined
  private sink: BodySink | undefined
  private queued: Buffer[] | undefined
  private headersSeen = false
  private ended = false
  private trailers: Buffer[] | null = null
  private failed: Error | undefined
  /** undici's resume for this request, handed to the caller as is. */
  resume: () => void = noop
  private finished = false
  /** The upgraded connection, for a request sent with `upgrade` that the endpoint accepted. */
  socket: Duplex | undefined = undefined

  constructor(
    private readonly call: OutboundCall,
    readonly endpoint: Endpoint,
    private readonly done: ClientDone,
  ) {
    call.abortAttempt = this
  }

  abort(err: Error): void {
    if (this.reason || this.finished) return
    this.reason = err
    this.abortFn?.(err)
  }

  // --- undici handler (legacy API) ---
  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort
    if (this.reason) abort(this.reason)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true
    this.statusCode = statusCode
    this.statusText = statusText
    this.rawHeaders = rawHeaders
    this.resume = resume
    this.headersSeen = true
    this.done(null, this)
    return true
  }

  /** The endpoint switched protocols: the socket is the response, with nothing to pipe. */
  onUpgrade(statusCode: number, rawHeaders: Buffer[], socket: Duplex): void {
    this.statusCode = statusCode
    this.rawHeaders = rawHeaders
    this.socket = socket
    this.headersSeen = true
    this.ended = true
    this.finish()
    // Cancelled while undici handed it over: nobody will take the socket.
    if (this.reason) {
      socket.destroy()
      this.done(this.reason)
      return
    }
    this.done(null, this)
  }

  onData(chunk: Buffer): boolean {
    if (this.sink) return this.sink.onData(chunk)
    ;(this.queued ??= []).push(chunk)
    return false
  }

  onComplete(trailers: Buffer[] | null): void {
    this.ended = true
    this.trailers = trailers
    if (this.sink) {
      this.sink.onComplete(trailers)
      this.finish()
    }
  }

  onError(err: Error): void {
    const e = this.reason ?? wrapTransportError(err, this.call, this.endpoint)
    if (!this.headersSeen) {
      this.finished = true
      this.done(e)
      return
    }
    if (this.sink) {
      this.sink.onError(e)
      this.finish()
    } else this.failed = e
  }

  // --- UpstreamResponse ---
  pipe(sink: BodySink): void {
    this.sink = sink
    const queued = this.queued
    this.queued = undefined
    if (queued) for (const chunk of queued) sink.onData(chunk)
    if (this.ended) {
      sink.onComplete(this.trailers)
      this.finish()
    } else if (this.failed) {
      sink.onError(this.failed)
      this.finish()
    } else this.resume()
  }

  discard(): void {
    if (this.sink) return
    this.socket?.destroy()
    this.sink = DROP
    this.queued = undefined
    this.finish()
    if (!this.ended && !this.failed) this.resume()
  }

  /** The attempt is over: a later cancel of the call must not reach it. */
  private finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.call.abortAttempt === this) this.call.abortAttempt = null
  }
}

/**
 * The terminal handler; `poolFor` returns (and creates on first use) the endpoint's pool for the
 * call's service.
 */
export function makeTransport(poolFor: (e: Endpoint, service: string) => Dispatcher): ClientHandler {
  return (call, done) => {
    if (call.aborted) return done(call.aborted)
    const endpoint = call.endpoint!
    const attempt = new Attempt(call, endpoint, done)
    // call.headers is the call's own copy; undici reads it synchronously inside dispatch, so the
    // per-attempt deadline header is written in place instead of copying the record.
    const headers = call.headers
    if (call.deadline !== Infinity) {
      const now = call.now()
      headers[DEADLINE_HEADER] = String(Math.max(0, Math.floor(call.deadline - now)))
    }
    const o = call.opts
    try {
      // The endpoint's owner, which is not the route's service for a backend that is another Service.
      poolFor(endpoint, call.group.set.service).dispatch({
        path: call.path,
        method: call.method as Dispatcher.HttpMethod,
        headers,
        body: (call.body?.forAttempt() ?? null) as Dispatcher.DispatchOptions['body'],
        headersTimeout: o.headersTimeout as number | undefined,
        bodyTimeout: o.bodyTimeout as number | undefined,
        reset: o.reset as boolean | undefined,
        blocking: o.blocking as boolean | undefined,
        expectContinue: o.expectContinue as boolean | undefined,
        upgrade: o.upgrade as string | undefined,
      }, attempt as unknown as Dispatcher.DispatchHandler)
    } catch (err) {
      attempt.onError(err as Error)
    }
  }
}
