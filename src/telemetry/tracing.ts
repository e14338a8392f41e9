// W3C trace context for outbound calls. With an OpenTelemetry SDK registered, the client span's
// context is injected; with none (the API's no-op), Weft still sends a valid traceparent so the
// next hop can join the trace. Ids come from randomUUID (cheap), not randomBytes.
import { randomUUID } from 'node:crypto'
import type { Span } from '@opentelemetry/api'

const INVALID_TRACE = '00000000000000000000000000000000'

export function newTraceId(): string {
  return randomUUID().replace(/-/g, '')
}

export function newSpanId(): string {
  return randomUUID().replace(/-/g, '').slice(0, 16)
}

/** traceparent for a span, or a fresh one (parented to `parentTraceId` when given). */
export function traceparentFor(span: Span | undefined, parentTraceId?: string): string {
  const sc = span?.spanContext()
  if (sc && sc.traceId !== INVALID_TRACE) {
    return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 1) === 1 ? '01' : '00'}`
  }
  return `00-${parentTraceId ?? newTraceId()}-${newSpanId()}-01`
}

/** The trace id inside a traceparent header, if it is well formed. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  if (!traceparent) return undefined
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent)
  return m && m[1] !== INVALID_TRACE ? m[1] : undefined
}
