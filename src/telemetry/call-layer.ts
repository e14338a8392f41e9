// The 'telemetry' client layer: one duration observation per logical call, as the application
// sees it (all attempts, until the body ends), labelled from config.
import { isWeftError } from '../errors/index.js'
import type { ClientLayer, DoneListener } from '../stack/call.js'
import { rawHeaderValue } from '../util/headers.js'

/** Header carrying a mesh-generated response's WEFT_ERR_* code (ours, or a Weft server's). */
export const ERROR_CODE_HEADER = 'weft-error-code'

export const callTelemetryLayer: ClientLayer = {
  role: 'telemetry',
  why: 'outermost: measures the call as the application sees it, retries and waits included',
  wrap(next, target) {
    const m = target.metrics
    const listener: DoneListener = {
      callDone(call, res, err) {
        const seconds = (performance.now() - call.startedAt) / 1000
        if (err) m.observe(call.method, res ? res.statusCode : isWeftError(err) ? err.httpStatus : 0, isWeftError(err) ? err.code : res ? 'WEFT_ERR_UPSTREAM_RESET' : 'UNKNOWN', seconds)
        else m.observe(call.method, res!.statusCode, res!.statusCode >= 400 ? rawHeaderValue(res!.rawHeaders, ERROR_CODE_HEADER) ?? '' : '', seconds)
      },
    }
    return (call, done) => {
      call.onDone(listener)
      next(call, done)
    }
  },
}
