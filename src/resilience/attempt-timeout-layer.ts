// The 'attempt-timeout' client layer: a per-try timeout (retries.perTryTimeout). When it fires the
// attempt is aborted with WEFT_ERR_UPSTREAM_TIMEOUT, which the retry layer may retry elsewhere.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer } from '../stack/call.js'

export const attemptTimeoutLayer: ClientLayer = {
  role: 'attempt-timeout',
  why: 'per attempt, just above the wire, so one slow endpoint costs one try, not the call',
  wrap(next, target) {
    const ms = target.retries.perTryTimeoutMs
    if (ms === undefined) return next
    return (call, done) => {
      const timer = setTimeout(() => {
        call.abortAttempt?.abort(new WeftError('WEFT_ERR_UPSTREAM_TIMEOUT', `${target.service.name}: attempt ${call.attempt + 1} to ${call.endpoint?.address} exceeded perTryTimeout ${ms}ms`, {
          details: callDetails(call, { perTryTimeoutMs: ms, endpoint: call.endpoint?.address }),
        }))
      }, ms)
      next(call, (err, res) => {
        clearTimeout(timer)
        done(err, res)
      })
    }
  },
}
