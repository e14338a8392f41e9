// The 'deadline' client layer: the call's deadline is the earlier of the route/service timeout
// and a deadline propagated from upstream; when it passes, the call fails with
// WEFT_ERR_DEADLINE_EXCEEDED at once and the attempt in flight is aborted (no waiting on it).
// The deadline covers the wait for response headers; a body then streams at its own pace.
// Expiry is driven by the shared DeadlineWatch, not a timer per call (see deadline-watch.ts).
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer, type OutboundCall } from '../stack/call.js'
import { formatDuration } from '../util/duration.js'
import { deadlineWatch } from './deadline-watch.js'

export function deadlineError(call: OutboundCall, budgetMs: number, propagated: boolean): WeftError {
  const t = call.target
  const why = propagated
    ? `the deadline propagated by the caller (${Math.round(budgetMs)}ms left)`
    : `timeout ${formatDuration(t.timeoutMs)} of ${t.rule.timeoutMs !== undefined ? `route rule ${t.routeLabel}` : `service ${t.service.name}`}`
  return new WeftError('WEFT_ERR_DEADLINE_EXCEEDED', `${call.method} ${t.service.name}${call.path}: deadline exceeded after ${Math.round(performance.now() - call.startedAt)}ms (${why})`, {
    details: callDetails(call, { timeoutMs: t.timeoutMs, propagatedDeadline: propagated, lastRetryReason: call.lastRetryReason }),
  })
}

/** The error for a call whose deadline passed: which limit it was is read back off the call. */
function expired(call: OutboundCall): Error {
  return deadlineError(call, call.deadline - call.startedAt, call.deadlinePropagated)
}

export const deadlineLayer: ClientLayer = {
  role: 'deadline',
  why: 'above retries so the whole call, back-offs included, fits in one deadline',
  wrap(next, target) {
    const timeoutMs = target.timeoutMs
    return (call, done) => {
      // The call was created a moment ago: its start time stands in for "now".
      const now = call.startedAt
      const propagatedLeft = call.deadline - now
      if (propagatedLeft <= 0) return done(deadlineError(call, propagatedLeft, true))
      if (propagatedLeft >= timeoutMs) call.deadline = now + timeoutMs
      else call.deadlinePropagated = true
      // On expiry the call is cancelled: the attempt (or back-off) in flight is aborted and its
      // rejection carries the error up at once. Once a response is committed its body streams
      // at its own pace, so expiry does nothing after that.
      call.deadlineReason = expired
      deadlineWatch.watch(call, now)
      next(call, done)
    }
  },
}
