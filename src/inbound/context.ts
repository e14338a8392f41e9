// The request context of an inbound request, carried by AsyncLocalStorage through the handler's
// async work. Outbound calls made inside a handler read it, so application code forwards no
// headers: the remaining deadline, the trace and the caller chain go on by themselves.
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Context, Span } from '@opentelemetry/api'
import { newSpanId, newTraceId } from '../telemetry/tracing.js'

/** Header listing the services a request passed through, the immediate caller last. */
export const CALLER_HEADER = 'weft-caller'
/** At most this many services are kept in the chain (the most recent ones). */
export const MAX_CHAIN = 8

export class InboundContext {
  /** W3C trace flags passed on to outbound calls. */
  traceFlags: number
  /** The server span (the OpenTelemetry API's no-op until an SDK is registered). */
  span: Span | undefined = undefined
  /** The OpenTelemetry context holding `span`, the parent of outbound client spans. */
  otelContext: Context | undefined = undefined
  private id: string | undefined
  private extended: string | undefined = undefined
  /** The caller's trace id, or one made when first asked for (most requests that start a trace never need it). */
  private trace: string | undefined

  constructor(
    /** The service serving this request. */
    readonly service: string,
    /** Absolute deadline on the performance.now() clock; Infinity when the caller sent none. */
    readonly deadline: number,
    /** From the caller's traceparent; undefined: a new trace, its id made on first use. */
    traceId: string | undefined,
    traceFlags: number,
    /** The request's weft-caller header, if any. */
    private readonly chainIn: string | undefined,
    requestId: string | undefined,
  ) {
    this.trace = traceId
    this.traceFlags = traceFlags
    this.id = requestId
  }

  /**
   * weft-caller for outbound calls made while serving: the incoming chain plus this service. Made
   * when first asked for: many requests make no outbound call.
   */
  get chain(): string {
    return (this.extended ??= extendChain(this.chainIn, this.service))
  }

  /** The trace this request belongs to (from its traceparent, or new). */
  get traceId(): string {
    return (this.trace ??= newTraceId())
  }

  set traceId(id: string) {
    this.trace = id
  }

  /** The request id: the caller's x-request-id, or one made when first asked for. */
  get requestId(): string {
    return (this.id ??= `${this.traceId.slice(0, 16)}${newSpanId()}`)
  }

  /** Milliseconds left before the propagated deadline (Infinity when there is none). */
  remainingMs(now = performance.now()): number {
    return this.deadline - now
  }
}

/** One store for the process: a context belongs to the request, whichever mesh serves it. */
export const requestContext = new AsyncLocalStorage<InboundContext>()

/** The inbound request context of the code running now, if it runs inside a meshed handler. */
export function currentContext(): InboundContext | undefined {
  return requestContext.getStore()
}

/** The chain to send onward: the incoming one (bounded) with `self` appended. */
export function extendChain(incoming: string | undefined, self: string): string {
  if (!incoming) return self
  const parts = incoming.split(',')
  const kept = parts.length >= MAX_CHAIN ? parts.slice(parts.length - MAX_CHAIN + 1) : parts
  return `${kept.map((p) => p.trim()).join(',')},${self}`
}

/** The immediate caller named by a weft-caller header (its last entry). */
export function lastCaller(chain: string | undefined): string | undefined {
  if (!chain) return undefined
  const i = chain.lastIndexOf(',')
  return (i < 0 ? chain : chain.slice(i + 1)).trim()
}
