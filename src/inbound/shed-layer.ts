// The server 'shed' layer: before anything expensive runs, a request is refused with 503
// WEFT_ERR_SERVER_OVERLOADED and retry-after when this instance is past its concurrency limit or
// its event loop is past a threshold (LoadMonitor). The caller's mesh retries it elsewhere: nothing
// was processed, so that is safe for any method.
import { WeftError } from '../errors/index.js'
import type { ServerLayer } from './call.js'
import { RETRY_AFTER_S } from './load-monitor.js'

export const shedLayer: ServerLayer = {
  role: 'shed',
  why: 'before identity, authz and the handler: a busy instance spends nothing on work it refuses',
  wrap(next, target) {
    const { monitor, admitted, maxConcurrent } = target
    const shed = (why: string, extra: Record<string, unknown>): WeftError =>
      new WeftError('WEFT_ERR_SERVER_OVERLOADED', `${target.service}: request shed before the handler: ${why}; retry another instance after ${RETRY_AFTER_S}s`, {
        details: { service: target.service, retryAfterSeconds: RETRY_AFTER_S, load: monitor.load, configVersion: target.configVersion, ...extra },
      })
    return (call, done) => {
      if (monitor.overloaded) return done(shed(monitor.reason, { trigger: 'event-loop' }))
      if (admitted.count >= maxConcurrent) {
        return done(shed(`${admitted.count} requests in flight reached inbound.maxConcurrent ${maxConcurrent}`, { trigger: 'concurrency', inFlight: admitted.count, maxConcurrent }))
      }
      admitted.count++
      next(call, (err, res) => {
        admitted.count--
        done(err, res)
      })
    }
  },
}
