// The 'trace' client layer: one CLIENT span per logical call (attempts become span events) and a
// W3C traceparent on the request. With no OpenTelemetry SDK registered the span is the API's
// no-op and costs next to nothing; the traceparent is still sent so the next hop can join.
import { SpanKind, SpanStatusCode, context, trace, type Tracer } from '@opentelemetry/api'
import type { ClientLayer, DoneListener } from '../stack/call.js'
import { traceparentFor, traceIdOf } from './tracing.js'
import { finalGrpcCode } from './call-layer.js'
import { splitRpcPath } from './rpc-metrics.js'

/** Ends the call's span with its outcome. */
const endSpan: DoneListener = {
  callDone(call, res, err) {
    const span = call.span!
    if (span.isRecording()) {
      if (res && call.target.protocol === 'grpc') span.setAttribute('rpc.grpc.status_code', finalGrpcCode(res))
      else if (res) span.setAttribute('http.response.status_code', res.statusCode)
      if (err) {
        span.recordException(err)
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? err.message })
      } else if (res && (call.target.protocol === 'grpc' ? finalGrpcCode(res) !== 0 : res.statusCode >= 500)) span.setStatus({ code: SpanStatusCode.ERROR })
    }
    span.end()
  },
}

const CLIENT_SPAN = { kind: SpanKind.CLIENT } as const

export function traceLayer(tracer: Tracer = trace.getTracer('weft')): ClientLayer {
  return {
    role: 'trace',
    why: 'wraps everything below so the span covers every attempt; sets traceparent once per call',
    wrap(next, target) {
      const grpc = target.protocol === 'grpc'
      const name = `${target.service.name} ${target.routeLabel}`
      return (call, done) => {
        const parent = call.parent
        // gRPC spans are named "<package.Service>/<Method>" (OpenTelemetry RPC conventions).
        const span = tracer.startSpan(grpc ? call.path.slice(1) : name, CLIENT_SPAN, parent?.otelContext ?? context.active())
        const recording = span.isRecording()
        if (recording && grpc) {
          const [service, method] = splitRpcPath(call.path)
          span.setAttributes({ 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method, 'weft.destination_service': target.service.name, 'weft.route': target.routeLabel })
        } else if (recording) {
          span.setAttributes({ 'http.request.method': call.method, 'weft.destination_service': target.service.name, 'weft.route': target.routeLabel })
        }
        const sent = call.headers.traceparent
        if (sent === undefined || !traceIdOf(String(sent))) {
          // Inside a meshed handler with no SDK recording, the inbound request's trace id goes on
          // with a new span id, so every hop shares one trace.
          call.headers.traceparent = recording || parent === undefined ? traceparentFor(span) : traceparentFor(undefined, parent.traceId, parent.traceFlags)
        }
        call.span = span
        call.onDone(endSpan)
        next(call, done)
      }
    },
  }
}
