// The 'deadline' client layer: the call's deadline is the earlier of the route/service timeout
// and a deadline propagated from upstream; when it passes, the call fails with
// WEFT_ERR_DEADLINE_EXCEEDED at once and the attempt in flight is aborted (no waiting on it).
// The deadline covers the wait for response headers; a body then streams at its own pace.
import { WeftError } from '../errors/index.js'
import { callDetails, type ClientLayer, type DoneListener, type OutboundCall } from '../stack/call.js'
import { formatDuration } from '../util/duration.js'

export function deadlineError(call: OutboundCall, budgetMs: number, propagated: boolean): WeftError {
  const t = call.target
  const why = propagated
    ? `the deadline propagated by the caller (${Math.round(budgetMs)}ms left)`
    : `timeout ${formatDuration(t.timeoutMs)} of ${t.rule.timeoutMs !== undefined ? `route rule ${t.routeLabel}` : `service ${t.service.name}`}`
  return new WeftError('WEFT_ERR_DEADLINE_EXCEEDED', `${call.method} ${t.service.name}${call.path}: deadline exceeded after ${Math.round(performance.now() - call.startedAt)}ms (${why})`, {
    details: callDetails(call, { timeoutMs: t.timeoutMs, propagatedDeadline: propagated, lastRetryReason: call.lastRetryReason }),
  })
}

const clearDeadline: DoneListener = { callDone: (call) => clearTimeout(call.deadlineTimer) }

export const deadlineLayer: ClientLayer = {
  role: 'deadline',
  why: 'above retries so the whole call, back-offs included, fits in one deadline',
  wrap(next, target) {
    const timeoutMs = target.timeoutMs
    return (call, done) => {
      const now = performance.now()
      const propagatedLeft = call.deadline - now
      const propagated = propagatedLeft < timeoutMs
      const budget = propagated ? propagatedLeft : timeoutMs
      if (budget <= 0) return done(deadlineError(call, budget, true))
      call.deadline = now + budget
      // On expiry the call is cancelled: the attempt (or back-off) in flight is aborted and its
      // rejection carries this error up at once. Once a response is committed its body streams
      // at its own pace, so a late timer does nothing; the timer is cleared when the call ends.
      call.deadlineTimer = setTimeout(() => {
        if (!call.committed) call.cancel(deadlineError(call, budget, propagated))
      }, budget)
      call.onDone(clearDeadline)
      next(call, done)
    }
  },
}
