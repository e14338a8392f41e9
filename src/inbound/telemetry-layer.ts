// The server 'telemetry' layer: a SERVER span joined to the caller's trace (W3C traceparent), and
// one duration observation per request labelled with the framework's route template. Outermost,
// so shed and rejected requests are measured too.
import { INVALID_TRACEID as INVALID_TRACE_ID, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api'
import { isWeftError } from '../errors/index.js'
import type { InboundCall, InboundTarget, ServerHandler, ServerLayer } from './call.js'
import type { InboundContext } from './context.js'
import { httpStatusOfGrpc } from '../errors/grpc-status.js'
import { splitRpcPath } from '../telemetry/rpc-metrics.js'
import type { AccessLog } from '../telemetry/access-log.js'

const SERVER_SPAN = { kind: SpanKind.SERVER } as const

function parentContext(call: InboundCall): Context {
  const p = call.parent
  if (!p) return ROOT_CONTEXT
  return trace.setSpanContext(ROOT_CONTEXT, new RemoteSpanContext(p.traceId, p.spanId, p.flags))
}

/**
 * The caller's span context, made by a class rather than an object literal, on purpose. As a
 * literal, V8 pretenured its allocation site in the meshed server (--trace-pretenuring-statistics:
 * a site whose few hundred objects were all alive at a scavenge, decided "tenure"); from then on
 * each request's span context was made in old space, and each request left ~1.2 KB in old space to
 * wait for a full GC (48 bytes without a traceparent; V8's sampling heap profiler, objects that
 * survived minor GCs): +7 µs of server CPU per request with a traceparent (27 vs 20 µs; sidecar.ts:
 * the meshed server 35 → 23 µs per request). The same with --no-allocation-site-pretenuring.
 * Node 20's V8 keeps allocation sites for literals only (the flag's statistics list no site for
 * objects made with `new`). Why those objects were all alive was not pinned down: the server span
 * keeps this object, the request context keeps the span, and a keep-alive connection's idle timer,
 * armed inside the request's AsyncLocalStorage context, keeps its last request's context; re-arming
 * that timer outside the context dropped the retention but not the pretenuring, and cost ~2 µs.
 */
class RemoteSpanContext {
  readonly isRemote = true
  constructor(readonly traceId: string, readonly spanId: string, readonly traceFlags: number) {}
}

/**
 * Puts the server span on the request context, so outbound calls made while serving continue its
 * trace. A recording span becomes their parent. A span an SDK chose not to record still carries a
 * sampling decision, which must reach the calls: given no context, the SDK would sample each call
 * as a new root trace (a new trace id, recorded although the caller said "not sampled"). So an
 * unsampled caller's context is passed on as it came, and a new trace the SDK left unsampled (a
 * valid span context that is not recording) is passed on with its id and flags. With no SDK (the
 * API's no-op) and no traceparent the span context is invalid and nothing is set.
 */
function joinTrace(ctx: InboundContext, span: Span, parent: Context): boolean {
  const sc = span.spanContext()
  if (span.isRecording()) {
    ctx.traceId = sc.traceId
    ctx.traceFlags = sc.traceFlags
    ctx.otelContext = trace.setSpan(parent, span)
    return true
  }
  if (parent !== ROOT_CONTEXT) ctx.otelContext = parent
  else if (sc.traceId !== INVALID_TRACE_ID) {
    ctx.traceId = sc.traceId
    ctx.traceFlags = sc.traceFlags
    ctx.otelContext = trace.setSpan(parent, span)
  }
  return false
}

/** The request's access log line (inbound): its outcome, its caller, and which rule refused it if one did. */
function logRequest(log: AccessLog, target: InboundTarget, call: InboundCall, err: Error | null | undefined, res: InboundCall | undefined, seconds: number, grpcStatus?: number): void {
  const weft = err ? (isWeftError(err) ? err : undefined) : undefined
  const status = grpcStatus !== undefined ? httpStatusOfGrpc(grpcStatus) : err ? (weft ? weft.httpStatus : 500) : res!.statusCode
  const errorCode = err ? (weft ? weft.code : 'UNKNOWN') : ''
  if (!log.wants(status, errorCode, grpcStatus)) return
  const ctx = call.context
  log.record({
    time: new Date().toISOString(),
    direction: 'inbound',
    protocol: target.protocol,
    method: call.method,
    path: call.path,
    status,
    ...(grpcStatus !== undefined ? { grpc_status: grpcStatus } : {}),
    error_code: errorCode,
    ...(err ? { message: err.message } : {}),
    duration_ms: Math.round(seconds * 1e6) / 1e3,
    source_service: call.source,
    destination_service: target.service,
    route: (res ?? call).route,
    ...(call.peer ? { peer: call.peer.id } : {}),
    trace_id: ctx.traceId,
    request_id: ctx.requestId,
    config_version: target.configVersion,
  })
}

/** gRPC: rpc_server_duration_seconds by final status, and an RPC-named span. */
const grpcTelemetry = (next: ServerHandler, target: InboundTarget): ServerHandler => {
  const { tracer, accessLog: log } = target
  const rpcFrom = target.rpcFrom!
  return (call, done) => {
    const ctx = call.context
    const parent = parentContext(call)
    const span = tracer.startSpan(call.path.slice(1), SERVER_SPAN, parent)
    ctx.span = span
    if (joinTrace(ctx, span, parent)) {
      const [service, method] = splitRpcPath(call.path)
      span.setAttributes({ 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': method, 'weft.source_service': call.source, 'weft.service': target.service })
    }
    next(call, (err, res) => {
      const seconds = (performance.now() - call.startedAt) / 1000
      const code = err ? (isWeftError(err) ? err.grpcStatus : 2) : res!.grpcCode
      rpcFrom(call.source).observe(call.path, code, err ? (isWeftError(err) ? err.code : 'UNKNOWN') : '', seconds)
      if (log !== undefined) logRequest(log, target, call, err, res, seconds, code)
      if (span.isRecording()) {
        span.setAttribute('rpc.grpc.status_code', code)
        if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? err.message })
        else if (httpStatusOfGrpc(code) >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
      }
      span.end()
      done(err, res)
    })
  }
}

export const serverTelemetryLayer: ServerLayer = {
  role: 'telemetry',
  why: 'outermost: every request is measured and traced, including the ones the mesh rejects',
  wrap(next, target) {
    if (target.protocol === 'grpc') return grpcTelemetry(next, target)
    const { tracer, metrics, accessLog: log } = target
    return (call, done) => {
      const ctx = call.context
      const parent = parentContext(call)
      const span = tracer.startSpan(call.method, SERVER_SPAN, parent)
      ctx.span = span
      if (joinTrace(ctx, span, parent)) {
        span.setAttributes({ 'http.request.method': call.method, 'weft.source_service': call.source, 'weft.service': target.service })
      }
      next(call, (err, res) => {
        const seconds = (performance.now() - call.startedAt) / 1000
        if (log !== undefined) logRequest(log, target, call, err, res, seconds)
        if (err) {
          const status = isWeftError(err) ? err.httpStatus : 500
          metrics.observe(call.method, status, call.route, call.source, isWeftError(err) ? err.code : 'UNKNOWN', seconds)
          if (span.isRecording()) {
            span.setAttribute('http.response.status_code', status)
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as { code?: string }).code ?? err.message })
          }
        } else {
          metrics.observe(call.method, res!.statusCode, res!.route, call.source, '', seconds)
          if (span.isRecording()) {
            span.updateName(res!.route ? `${call.method} ${res!.route}` : call.method)
            span.setAttribute('http.response.status_code', res!.statusCode)
            if (res!.route) span.setAttribute('http.route', res!.route)
            if (res!.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR })
          }
        }
        span.end()
        done(err, res)
      })
    }
  },
}
