// The 'telemetry' client layer: one duration observation per logical call, as the application
// sees it (all attempts, until the body ends or the final gRPC status), labelled from config.
import { isWeftError } from '../errors/index.js'
import { grpcStatusOfHttp, httpStatusOfGrpc } from '../errors/grpc-status.js'
import type { ClientLayer, DoneListener, OutboundCall, UpstreamResponse } from '../stack/call.js'
import type { RouteTarget } from '../stack/target.js'
import { headerValue, rawHeaderValue } from '../util/headers.js'
import { pathOnly, type AccessLog } from './access-log.js'
import { traceIdOf } from './tracing.js'

/** Header carrying a mesh-generated response's WEFT_ERR_* code (ours, or a Weft server's). */
export const ERROR_CODE_HEADER = 'weft-error-code'

/** The final gRPC status of a finished call's response (an HTTP-made answer maps by the gRPC spec). */
export function finalGrpcCode(res: UpstreamResponse): number {
  return res.grpcCode !== undefined && res.grpcCode >= 0 ? res.grpcCode : grpcStatusOfHttp(res.statusCode)
}

/** The call's access log line (outbound): what happened to it, and which rule and endpoint it met. */
function logCall(log: AccessLog, target: RouteTarget, call: OutboundCall, status: number, errorCode: string, err: Error | undefined, seconds: number, grpcStatus?: number): void {
  if (!log.wants(status, errorCode, grpcStatus)) return
  const requestId = call.headers['x-request-id']
  log.record({
    time: new Date().toISOString(),
    direction: 'outbound',
    protocol: target.protocol,
    method: call.method,
    path: pathOnly(call.path),
    status,
    ...(grpcStatus !== undefined ? { grpc_status: grpcStatus } : {}),
    error_code: errorCode,
    ...(err ? { message: err.message } : {}),
    duration_ms: Math.round(seconds * 1e6) / 1e3,
    source_service: target.source,
    destination_service: target.service.name,
    route: target.routeLabel,
    ...(call.endpoint ? { upstream: call.endpoint.address } : {}),
    attempts: call.attempt + 1,
    ...(call.lastRetryReason !== undefined ? { retry_reason: call.lastRetryReason } : {}),
    trace_id: traceIdOf(headerValue(call.headers, 'traceparent')) ?? '',
    ...(requestId !== undefined ? { request_id: String(requestId) } : {}),
    config_version: target.configVersion,
  })
}

function httpListener(target: RouteTarget): DoneListener {
  const m = target.metrics
  const log = target.accessLog
  return {
    callDone(call, res, err) {
      const seconds = (performance.now() - call.startedAt) / 1000
      let status: number
      let code: string
      if (err) {
        status = res ? res.statusCode : isWeftError(err) ? err.httpStatus : 0
        code = isWeftError(err) ? err.code : res ? 'WEFT_ERR_UPSTREAM_RESET' : 'UNKNOWN'
      } else {
        status = res!.statusCode
        code = status >= 400 ? rawHeaderValue(res!.rawHeaders, ERROR_CODE_HEADER) ?? '' : ''
      }
      m.observe(call.method, status, code, seconds)
      if (log !== undefined) logCall(log, target, call, status, code, err, seconds)
    },
  }
}

function grpcListener(target: RouteTarget): DoneListener {
  const m = target.rpcMetrics!
  const log = target.accessLog
  return {
    callDone(call, res, err) {
      const seconds = (performance.now() - call.startedAt) / 1000
      let grpcCode: number
      let code: string
      if (err || !res) {
        grpcCode = isWeftError(err) ? err.grpcStatus : 2
        code = isWeftError(err) ? err.code : 'UNKNOWN'
      } else {
        grpcCode = finalGrpcCode(res)
        code = grpcCode === 0 ? '' : rawHeaderValue(res.rawHeaders, ERROR_CODE_HEADER) ?? ''
      }
      m.observe(call.path, grpcCode, code, seconds)
      if (log !== undefined) logCall(log, target, call, httpStatusOfGrpc(grpcCode), code, err, seconds, grpcCode)
    },
  }
}

export const callTelemetryLayer: ClientLayer = {
  role: 'telemetry',
  why: 'outermost: measures the call as the application sees it, retries and waits included',
  wrap(next, target) {
    const listener = target.protocol === 'grpc' ? grpcListener(target) : httpListener(target)
    return (call, done) => {
      call.onDone(listener)
      next(call, done)
    }
  },
}
