// The 'telemetry' client layer: one duration observation per logical call, as the application
// sees it (all attempts, until the body ends or the final gRPC status), labelled from config.
import { isWeftError } from '../errors/index.js'
import { grpcStatusOfHttp } from '../errors/grpc-status.js'
import type { ClientLayer, DoneListener, UpstreamResponse } from '../stack/call.js'
import type { RouteTarget } from '../stack/target.js'
import { rawHeaderValue } from '../util/headers.js'

/** Header carrying a mesh-generated response's WEFT_ERR_* code (ours, or a Weft server's). */
export const ERROR_CODE_HEADER = 'weft-error-code'

/** The final gRPC status of a finished call's response (an HTTP-made answer maps by the gRPC spec). */
export function finalGrpcCode(res: UpstreamResponse): number {
  return res.grpcCode !== undefined && res.grpcCode >= 0 ? res.grpcCode : grpcStatusOfHttp(res.statusCode)
}

function httpListener(target: RouteTarget): DoneListener {
  const m = target.metrics
  return {
    callDone(call, res, err) {
      const seconds = (performance.now() - call.startedAt) / 1000
      if (err) m.observe(call.method, res ? res.statusCode : isWeftError(err) ? err.httpStatus : 0, isWeftError(err) ? err.code : res ? 'WEFT_ERR_UPSTREAM_RESET' : 'UNKNOWN', seconds)
      else m.observe(call.method, res!.statusCode, res!.statusCode >= 400 ? rawHeaderValue(res!.rawHeaders, ERROR_CODE_HEADER) ?? '' : '', seconds)
    },
  }
}

function grpcListener(target: RouteTarget): DoneListener {
  const m = target.rpcMetrics!
  return {
    callDone(call, res, err) {
      const seconds = (performance.now() - call.startedAt) / 1000
      if (err || !res) m.observe(call.path, isWeftError(err) ? err.grpcStatus : 2, isWeftError(err) ? err.code : 'UNKNOWN', seconds)
      else {
        const code = finalGrpcCode(res)
        m.observe(call.path, code, code === 0 ? '' : rawHeaderValue(res.rawHeaders, ERROR_CODE_HEADER) ?? '', seconds)
      }
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
