// The 'retry' client layer: retries failed attempts on another endpoint within a retry budget,
// with full-jitter back-off, never past the deadline. Only idempotent requests are retried
// (GET/HEAD/OPTIONS/PUT/DELETE/TRACE, or any request with an Idempotency-Key header); a request
// whose connection was never made is safe to retry whatever its method, since no byte was sent.
// A body streamed past the replay buffer cannot be sent again, so it is never retried.
import { randomUUID } from 'node:crypto'
import { WeftError, isWeftError } from '../errors/index.js'
import type { RetrySettings } from '../config/types.js'
import { callDetails, type ClientLayer, type OutboundCall, type UpstreamResponse } from '../stack/call.js'
import { fullJitterDelay } from './backoff.js'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** Why a failed attempt may be retried under these settings, or undefined. */
export function retryReasonForError(err: unknown, r: RetrySettings): string | undefined {
  if (!isWeftError(err)) return undefined
  if (err.code === 'WEFT_ERR_CONNECT_FAILED') return r.retryOnConnectFailure ? 'connect-failure' : undefined
  if (err.code === 'WEFT_ERR_UPSTREAM_RESET') return r.retryOnReset ? 'reset' : undefined
  if (err.code === 'WEFT_ERR_UPSTREAM_TIMEOUT') return r.retryOnTimeout || r.retryOnStatus.has(504) ? 'per-try-timeout' : undefined
  return undefined
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function stop(res: UpstreamResponse | undefined, err: unknown, call: OutboundCall, why: string): UpstreamResponse {
  if (res) return res
  if (isWeftError(err)) err.details = { ...err.details, ...callDetails(call), retriesStopped: why }
  throw err
}

export const retryLayer: ClientLayer = {
  role: 'retry',
  why: 'above the balancer so every attempt picks an endpoint again (and avoids the one that failed)',
  wrap(next, target) {
    const r = target.retries
    if (r.attempts === 0) return next
    const budget = target.runtime.budget(r)
    const m = target.metrics
    /** The slow path: decides about a failed attempt and runs further attempts. */
    const retrying = async (call: OutboundCall, first: UpstreamResponse | undefined, firstErr: unknown, idempotent: boolean): Promise<UpstreamResponse> => {
      let res = first
      let err = firstErr
      for (;;) {
        if (call.aborted) {
          res?.discard()
          throw call.aborted
        }
        const reason = res ? (r.retryOnStatus.has(res.statusCode) ? String(res.statusCode) : undefined) : retryReasonForError(err, r)
        if (reason === undefined) return stop(res, err, call, 'not retryable')
        if (call.attempt >= r.attempts) return stop(res, err, call, `all ${r.attempts} retries used`)
        if (!idempotent && reason !== 'connect-failure') return stop(res, err, call, `${call.method} without an Idempotency-Key is not retried after its request was sent`)
        if (call.body && !call.body.replayable) return stop(res, err, call, 'the request body went past the replay buffer')
        if (!budget.tryWithdraw()) {
          m.budgetExhausted()
          if (res) return res
          throw new WeftError('WEFT_ERR_RETRY_BUDGET_EXHAUSTED',
            `${call.method} ${target.service.name}${call.path}: retry after ${reason} refused, the retry budget (${r.budget.ratio * 100}% + ${r.budget.minPerSecond}/s) is spent`,
            { cause: err, details: callDetails(call, { lastRetryReason: reason }) })
        }
        const delay = fullJitterDelay(call.attempt + 1, r.backoff.baseMs, r.backoff.maxMs)
        if (performance.now() + delay >= call.deadline) return stop(res, err, call, 'no time left before the deadline')
        res?.discard()
        call.avoid = call.endpoint
        call.lastRetryReason = reason
        m.retry(reason)
        call.span?.addEvent('weft.retry', { 'weft.attempt': call.attempt + 1, 'weft.reason': reason, 'weft.endpoint': call.endpoint?.address ?? '' })
        if (delay > 0) await call.sleep(delay)
        call.attempt++
        res = undefined
        err = undefined
        try {
          res = await next(call)
        } catch (e) {
          err = e
        }
      }
    }

    return (call) => {
      budget.deposit()
      if (r.idempotencyKey === 'auto' && !IDEMPOTENT.has(call.method) && call.headers['idempotency-key'] === undefined) {
        call.headers['idempotency-key'] = randomUUID()
      }
      const idempotent = IDEMPOTENT.has(call.method) || call.headers['idempotency-key'] !== undefined
      // Fast path: one promise hop when the first attempt succeeds.
      return next(call).then(
        (res) => (call.aborted || r.retryOnStatus.has(res.statusCode) ? retrying(call, res, undefined, idempotent) : res),
        (err: unknown) => retrying(call, undefined, err, idempotent),
      )
    }
  },
}
