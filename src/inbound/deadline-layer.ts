// The server 'deadline' layer: a request whose propagated deadline (weft-deadline-ms) has already
// passed is answered 504 WEFT_ERR_DEADLINE_EXCEEDED without running the handler: its caller has
// given up, so any work done for it is wasted. A live deadline rides on in the request context.
import { WeftError } from '../errors/index.js'
import type { ServerLayer } from './call.js'

export const serverDeadlineLayer: ServerLayer = {
  role: 'deadline',
  why: 'before shedding and the handler: work for a caller that has given up is wasted',
  wrap(next, target) {
    return (call, done) => {
      const left = call.context.deadline - call.startedAt
      if (left <= 0) {
        return done(new WeftError('WEFT_ERR_DEADLINE_EXCEEDED', `${target.protocol === 'grpc' ? call.path : call.method} ${target.service}: the caller's deadline had passed when the request arrived (${target.protocol === 'grpc' ? 'grpc-timeout' : 'weft-deadline-ms'}, ${Math.round(left)}ms left); the handler was not run`, {
          details: { service: target.service, source: call.source, propagatedDeadline: true, configVersion: target.configVersion },
        }))
      }
      next(call, done)
    }
  },
}
