// The `handmade` arm of bench/http-client.ts: what a careful team writes by hand without Weft (undici + cockatiel + prom-client + traceparent).
import { randomBytes } from 'node:crypto'
import {
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  handleType,
  retry,
  timeout,
  wrap,
} from 'cockatiel'
import { Histogram, Registry } from 'prom-client'
import { Pool } from 'undici'
import type { Send } from './load.js'

/** A 5xx answer, thrown so the retry and breaker policies see it (its body is already drained). */
class ServerError extends Error {
  constructor(readonly status: number) {
    super(`upstream answered ${status}`)
  }
}

// Socket-level failures worth another try on an idempotent GET: the connection was refused,
// reset or timed out before an answer (undici's own codes and the OS's).
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])
const isConnectionError = (err: Error) => CONNECTION_CODES.has((err as { code?: string }).code ?? '')
// The per-attempt timeout is cooperative: it aborts the signal handed to undici, which rejects
// with the signal's reason (an AbortError). The retry policy checks the caller's own signal before
// retrying, so only our own timeout is retried, never a caller's cancellation.
const isTimeout = (err: Error) => err.name === 'AbortError'

// One handling rule for both policies: what a retry may help with is also what the breaker counts.
const transient = handleType(ServerError).orWhen(isConnectionError).orWhen(isTimeout)

// The same 17 bounds as Weft's own client histogram, so each arm's observe costs the same.
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

export interface HandmadeClient {
  send: Send
  close(): Promise<void>
  /** Requests counted in the histogram so far (the arm checks it is really observing). */
  observed(): Promise<number>
}

/** A client for `origin` (one listener, like the raw arm) sending GET `path`; `route` is the fixed metric label. */
export function handmadeClient(origin: string, path: string, route: string): HandmadeClient {
  const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 }) // the raw arm's options
  const registry = new Registry()
  const duration = new Histogram({
    name: 'http_client_request_duration_seconds',
    help: 'Outbound HTTP request duration as the caller sees it, all attempts included.',
    labelNames: ['method', 'status', 'route'] as const,
    buckets: BUCKETS,
    registers: [registry],
  })

  // cockatiel's maxAttempts counts retries after the first try: 1 means 2 attempts in all.
  // Backoff: decorrelated jitter (the library's default generator) from 25 ms, capped at 250 ms.
  const retryPolicy = retry(transient, { maxAttempts: 1, backoff: new ExponentialBackoff({ initialDelay: 25, maxDelay: 250 }) })
  // Shared by every request (a breaker per call would never open): 5 failures in a row open it for 10 s.
  const breakerPolicy = circuitBreaker(transient, { halfOpenAfter: 10_000, breaker: new ConsecutiveBreaker(5) })
  // Innermost, so each attempt gets its own 5 s and a stuck attempt can be retried.
  const attemptTimeout = timeout(5_000, TimeoutStrategy.Cooperative)
  // The libraries' documented defaults are kept, as a team following the README would: execute()
  // without a signal of its own (cockatiel then hangs each call's abort listener on one module-wide
  // signal, an O(in-flight) add and remove per call, and Node warns past 10 listeners), and the
  // timeout's abortOnReturn (each attempt's signal is aborted when it returns, a DOMException each).
  const policy = wrap(retryPolicy, breakerPolicy, attemptTimeout)

  const get = (traceparent: string) =>
    policy.execute(async ({ signal }) => {
      const r = await pool.request({ method: 'GET', path, headers: { traceparent }, signal })
      if (r.statusCode >= 500) {
        await r.body.dump() // frees the connection before the retry
        throw new ServerError(r.statusCode)
      }
      // The body is read inside the policy so the attempt's timeout covers it too.
      return { status: r.statusCode, body: await r.body.text() }
    })

  const send: Send = async () => {
    // A fresh W3C trace context per request: version 00, 16-byte trace id, 8-byte parent id, sampled.
    const ids = randomBytes(24).toString('hex')
    const traceparent = `00-${ids.slice(0, 32)}-${ids.slice(32)}-01`
    const end = duration.startTimer({ method: 'GET', route })
    try {
      const res = await get(traceparent)
      end({ status: String(res.status) })
      return res.status === 200 && res.body === 'ok'
    } catch (err) {
      end({ status: err instanceof ServerError ? String(err.status) : 'error' })
      throw err
    }
  }

  return {
    send,
    close: () => pool.close(),
    observed: async () => {
      const metric = await duration.get()
      return metric.values.filter((v) => v.metricName === 'http_client_request_duration_seconds_count').reduce((n, v) => n + v.value, 0)
    },
  }
}
