// The outbound call and response shapes every client layer passes along. A call is created
// once per logical request; attempt-scoped fields (endpoint, abortAttempt) are overwritten by
// each attempt, which is safe because attempts run one after another.
import type { Duplex } from 'node:stream'
import type { Span } from '@opentelemetry/api'
import type { Endpoint } from '../discovery/endpoint.js'
import type { EndpointGroup } from '../discovery/endpoint-set.js'
import type { HeaderRecord } from '../util/headers.js'
import type { RouteTarget } from './target.js'
import type { DeadlineWatch, Watched } from '../resilience/deadline-watch.js'

/** Receives a committed response body. Same contract as undici's legacy handler methods. */
export interface BodySink {
  onData(chunk: Buffer): boolean
  onComplete(trailers: Buffer[] | null): void
  onError(err: Error): void
}

/** A response whose headers have arrived and whose body has not been handed to anyone yet. */
export interface UpstreamResponse {
  readonly statusCode: number
  readonly statusText: string
  readonly rawHeaders: Buffer[]
  /** Hands the body to the caller; called at most once. */
  pipe(sink: BodySink): void
  /** Resumes a body paused by the sink returning false from onData (a stable function). */
  readonly resume: () => void
  /** Drops the body (a retry replaces this response). */
  discard(): void
  /**
   * gRPC only: the status of an answer that committed nothing (no response message came before
   * the final status), which a retry may replace; -1 once a message committed the response.
   * Undefined for HTTP responses.
   */
  readonly grpcCode?: number
  /**
   * An upgraded connection (WebSocket and other `upgrade` requests): the socket, which has no body
   * to pipe and belongs to the caller once the response is delivered. Undefined otherwise.
   */
  readonly socket?: Duplex
}

export interface CallBody {
  /** The body for the next attempt, or undefined when it cannot be replayed any more. */
  forAttempt(): unknown
  readonly replayable: boolean
  /** True for a body held whole in memory (string, bytes, Blob, FormData…): it can be sent to two places. */
  readonly inMemory?: boolean
}

/**
 * The inbound request a call is made from (the handler's AsyncLocalStorage context): its deadline,
 * trace and caller chain go on to the next hop.
 */
export interface ParentContext {
  readonly deadline: number
  readonly traceId: string
  readonly traceFlags: number
  /** weft-caller value for calls made while serving it. */
  readonly chain: string
  /** The OpenTelemetry context of the server span, when an SDK records it. */
  readonly otelContext?: import('@opentelemetry/api').Context | undefined
}

/** Something cancel() can stop: an attempt in flight, a back-off. */
export interface Abortable {
  abort(err: Error): void
}

/** Told once when a call is over; made once per target by the layers that need it. */
export interface DoneListener {
  callDone(call: OutboundCall, res: UpstreamResponse | undefined, err: Error | undefined): void
}

export class OutboundCall {
  /**
   * When the call started (performance.now()). Layers that need "now" near the start of the
   * first attempt read this instead of the clock: each clock read costs ~50 ns on the hot path.
   */
  readonly startedAt = performance.now()
  /** Absolute deadline on the performance.now() clock; Infinity when none. */
  deadline = Infinity
  attempt = 0
  endpoint: Endpoint | undefined = undefined
  /** The backend group drawn for this call by the rule's weighted split. */
  readonly group: EndpointGroup
  /** The endpoint that failed the previous attempt; the balancer avoids it when it can. */
  avoid: Endpoint | undefined = undefined
  /** Addresses of the endpoints of earlier attempts (allocated only when a call retries). */
  private earlierEndpoints: string[] | undefined = undefined
  aborted: Error | null = null
  /** What cancel() aborts: the attempt in flight or the back-off being slept. */
  abortAttempt: Abortable | null = null
  /** Set by the deadline layer: the error a passed deadline cancels the call with. */
  deadlineReason: ((call: OutboundCall) => Error) | undefined = undefined
  /** True when the deadline came from the caller (weft-deadline-ms), not this call's timeout. */
  deadlinePropagated = false
  /** gRPC: the one transparent retry of a refused stream was used (grpc/transport.ts). */
  transparentRetried = false
  span: Span | undefined = undefined
  /** The inbound request this call is made for, when made inside a meshed handler. */
  parent: ParentContext | undefined = undefined
  /** Why the last attempt was retried, for error details. */
  lastRetryReason: string | undefined = undefined
  /** Set (by commit()) when a response was handed to the caller: the deadline no longer applies to its body. */
  committed = false
  /** DeadlineWatch's links: see resilience/deadline-watch.ts. */
  watchPrev: Watched | undefined = undefined
  watchNext: Watched | undefined = undefined
  watchedBy: DeadlineWatch | undefined = undefined

  constructor(
    readonly method: string,
    readonly path: string,
    /** Lowercase headers sent with every attempt; layers may add to them before the first. */
    readonly headers: HeaderRecord,
    readonly body: CallBody | null,
    /** The caller's dispatch options, for fields Weft passes through (timeouts, reset, …). */
    readonly opts: Readonly<Record<string, unknown>>,
    readonly target: RouteTarget,
  ) {
    this.group = target.pickGroup()
  }

  private doneListeners: DoneListener[] | undefined = undefined
  private over = false
  /** False once the call has waited (a back-off, an injected delay): startedAt is stale then. */
  private fresh = true

  /**
   * "Now" for layers on the way to the first attempt: the start time while nothing has made the
   * call wait (the few µs since are noise at ms resolution), the clock otherwise.
   */
  now(): number {
    return this.fresh && this.attempt === 0 ? this.startedAt : performance.now()
  }

  /** Every endpoint this call was sent to, in order. */
  get endpointsTried(): string[] {
    const list = this.earlierEndpoints ? [...this.earlierEndpoints] : []
    if (this.endpoint) list.push(this.endpoint.address)
    return list
  }

  /** Sets the endpoint of the next attempt (the balancer calls this). */
  useEndpoint(e: Endpoint): void {
    if (this.endpoint) (this.earlierEndpoints ??= []).push(this.endpoint.address)
    this.endpoint = e
  }

  /** The deadline no longer applies: a response was committed, the call is over or cancelled. */
  get deadlineSettled(): boolean {
    return this.committed || this.over || this.aborted !== null
  }

  /** Called by the deadline watch when the deadline passes while it still applies. */
  expire(): void {
    if (!this.deadlineSettled && this.deadlineReason) this.cancel(this.deadlineReason(this))
  }

  /** A response goes to the caller: the deadline no longer applies (to its body either). */
  commit(): void {
    this.committed = true
    this.watchedBy?.unwatch(this)
  }

  /** Stops the call: the current attempt (or back-off) is aborted and no further attempt starts. */
  cancel(err: Error): void {
    if (this.aborted) return
    this.aborted = err
    this.watchedBy?.unwatch(this)
    this.abortAttempt?.abort(err)
  }

  /**
   * Calls `listener.callDone` once when the call is over for the caller: the committed response's
   * body ended or failed, or the call was rejected. Layers register a listener made once per
   * target (no closure per request) instead of chaining on the outcome.
   */
  onDone(listener: DoneListener): void {
    ;(this.doneListeners ??= []).push(listener)
  }

  /** Called once by the protocol front end (the dispatcher) when the call is over. */
  finish(res: UpstreamResponse | undefined, err: Error | undefined): void {
    this.over = true
    this.watchedBy?.unwatch(this)
    const list = this.doneListeners
    this.doneListeners = undefined
    if (list) for (const l of list) l.callDone(this, res, err)
  }

  /** Waits `ms` (a back-off, an injected delay), then calls `then`; at once with the error if cancelled. */
  sleep(ms: number, then: (err: Error | null) => void): void {
    if (this.aborted) return then(this.aborted)
    this.fresh = false
    const wake: Abortable = {
      abort(err) {
        clearTimeout(timer)
        then(err)
      },
    }
    const timer = setTimeout(() => {
      if (this.abortAttempt === wake) this.abortAttempt = null
      then(null)
    }, ms)
    this.abortAttempt = wake
  }
}

import type { Done, Handler, Layer } from './layer.js'
/** A client-side layer: wraps the next handler for one (service, route rule) target. */
export type ClientLayer = Layer<OutboundCall, UpstreamResponse, RouteTarget>
export type ClientHandler = Handler<OutboundCall, UpstreamResponse>
export type ClientDone = Done<UpstreamResponse>

/** The details every mesh-generated error carries: which rule fired, what was tried. */
export function callDetails(call: OutboundCall, extra?: Record<string, unknown>): Record<string, unknown> {
  const t = call.target
  return {
    service: t.service.name,
    route: t.routeLabel,
    method: call.method,
    attempts: call.attempt + 1,
    endpointsTried: call.endpointsTried,
    breakerState: t.runtime.breaker?.state ?? 'disabled',
    configVersion: t.configVersion,
    ...extra,
  }
}
