// The 'retry' client layer: retries failed attempts on another endpoint within a retry budget,
// with full-jitter back-off, never past the deadline. Only idempotent requests are retried
// (GET/HEAD/OPTIONS/PUT/DELETE/TRACE, or any request with an Idempotency-Key header); a request
// whose connection was never made is safe to retry whatever its method, since no byte was sent.
// A body streamed past the replay buffer cannot be sent again, so it is never retried.
import { randomUUID } from 'node:crypto'
import { WeftError, isWeftError } from '../errors/index.js'
import type { RetrySettings } from '../config/types.js'
import { callDetails, type ClientDone, type ClientLayer, type OutboundCall, type UpstreamResponse } from '../stack/call.js'
import { fullJitterDelay } from './backoff.js'
import { rawHeaderValue } from '../util/headers.js'
import { ERROR_CODE_HEADER } from '../telemetry/call-layer.js'
import { GRPC_STATUS_WORDS } from '../errors/grpc-status.js'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/** Why a failed attempt may be retried under these settings, or undefined. */
export function retryReasonForError(err: unknown, r: RetrySettings): string | undefined {
  if (!isWeftError(err)) return undefined
  // A failed mTLS handshake is a connection never made (no request byte was sent): the same as a
  // connect failure, so another endpoint is tried whatever the method.
  if (err.code === 'WEFT_ERR_CONNECT_FAILED' || err.code === 'WEFT_ERR_TLS_HANDSHAKE') return r.retryOnConnectFailure ? 'connect-failure' : undefined
  if (err.code === 'WEFT_ERR_UPSTREAM_RESET') return r.retryOnReset ? 'reset' : undefined
  if (err.code === 'WEFT_ERR_UPSTREAM_TIMEOUT') return r.retryOnTimeout || r.retryOnStatus.has(504) ? 'per-try-timeout' : undefined
  return undefined
}

/**
 * Why a failed attempt may be retried (a reason label), or why not (`{ stop }`). HTTP: the
 * retryOn statuses and errors, idempotent requests only (a shed or unconnected request ran
 * nowhere, so any method). gRPC: the retryOn gRPC codes on an answer that committed nothing; the
 * method's safety is the service owner's statement, as in gRPC's own retry policy.
 */
type Classify = (call: OutboundCall, res: UpstreamResponse | undefined, err: Error | null, idempotent: boolean) => string | { stop: string } | undefined

function classifyHttp(r: RetrySettings): Classify {
  return (call, res, err, idempotent) => {
    // A Weft server that shed the request ran none of it: safe to retry whatever the method.
    const shed = res !== undefined && res.statusCode === 503 && rawHeaderValue(res.rawHeaders, ERROR_CODE_HEADER) === 'WEFT_ERR_SERVER_OVERLOADED'
    const reason = shed ? 'server-shed' : res ? (r.retryOnStatus.has(res.statusCode) ? String(res.statusCode) : undefined) : retryReasonForError(err, r)
    if (reason === undefined) return undefined
    if (!idempotent && reason !== 'connect-failure' && reason !== 'server-shed') return { stop: `${call.method} without an Idempotency-Key is not retried after its request was sent` }
    return reason
  }
}

function classifyGrpc(r: RetrySettings): Classify {
  return (_call, res, err) => {
    // The only local failure of a gRPC attempt is its per-try timeout: retried when retryOn names
    // deadline-exceeded (connect failures and resets arrive as UNAVAILABLE statuses).
    if (!res) return isWeftError(err, 'WEFT_ERR_UPSTREAM_TIMEOUT') && r.retryOnGrpc.has(4) ? 'per-try-timeout' : undefined
    const code = res.grpcCode
    if (code === undefined || code < 0) return undefined // a response message committed the call
    return r.retryOnGrpc.has(code) ? GRPC_STATUS_WORDS[code] ?? String(code) : undefined
  }
}

export const retryLayer: ClientLayer = {
  role: 'retry',
  why: 'above the balancer so every attempt picks an endpoint again (and avoids the one that failed)',
  wrap(next, target) {
    const r = target.retries
    if (r.attempts === 0) return next
    const budget = target.runtime.budget(r)
    const m = target.metrics
    const grpc = target.protocol === 'grpc'
    const classify = grpc ? classifyGrpc(r) : classifyHttp(r)
    /** The slow path: decides about a failed attempt and runs the next one. */
    const decide = (call: OutboundCall, res: UpstreamResponse | undefined, err: Error | null, idempotent: boolean, done: ClientDone): void => {
      if (call.aborted) {
        res?.discard()
        return done(call.aborted)
      }
      const stop = (why: string): void => {
        if (res) return done(null, res)
        if (isWeftError(err)) err.details = { ...err.details, ...callDetails(call), retriesStopped: why }
        done(err)
      }
      const reason = classify(call, res, err, idempotent)
      if (reason === undefined) return stop('not retryable')
      if (typeof reason === 'object') return stop(reason.stop)
      if (call.attempt >= r.attempts) return stop(`all ${r.attempts} retries used`)
      if (call.body && !call.body.replayable) return stop(grpc ? 'the request messages went past the replay buffer' : 'the request body went past the replay buffer')
      if (!budget.tryWithdraw()) {
        m.budgetExhausted()
        if (res) return done(null, res)
        return done(new WeftError('WEFT_ERR_RETRY_BUDGET_EXHAUSTED',
          `${call.method} ${target.service.name}${call.path}: retry after ${reason} refused, the retry budget (${r.budget.ratio * 100}% + ${r.budget.minPerSecond}/s) is spent`,
          { cause: err, details: callDetails(call, { lastRetryReason: reason }) }))
      }
      const delay = fullJitterDelay(call.attempt + 1, r.backoff.baseMs, r.backoff.maxMs)
      if (performance.now() + delay >= call.deadline) return stop('no time left before the deadline')
      res?.discard()
      call.avoid = call.endpoint
      call.lastRetryReason = reason
      m.retry(reason)
      call.span?.addEvent('weft.retry', { 'weft.attempt': call.attempt + 1, 'weft.reason': reason, 'weft.endpoint': call.endpoint?.address ?? '' })
      const again = (): void => {
        call.attempt++
        next(call, (e, r2) => decide(call, r2, e, idempotent, done))
      }
      if (delay > 0) call.sleep(delay, (e) => (e ? done(e) : again()))
      else again()
    }

    if (grpc) {
      return (call, done) => {
        budget.deposit(call.startedAt)
        next(call, (err, res) => {
          if (res && !call.aborted && (res.grpcCode === undefined || res.grpcCode <= 0)) return done(null, res)
          decide(call, res, err, true, done)
        })
      }
    }
    return (call, done) => {
      budget.deposit(call.startedAt)
      if (r.idempotencyKey === 'auto' && !IDEMPOTENT.has(call.method) && call.headers['idempotency-key'] === undefined) {
        call.headers['idempotency-key'] = randomUUID()
      }
      const idempotent = IDEMPOTENT.has(call.method) || call.headers['idempotency-key'] !== undefined
      next(call, (err, res) => {
        // Fast path: a first attempt that needs no retry goes straight back.
        if (res && !call.aborted && res.statusCode !== 503 && !r.retryOnStatus.has(res.statusCode)) return done(null, res)
        decide(call, res, err, idempotent, done)
      })
    }
  },
}
