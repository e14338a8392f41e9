// Circuit breaker per service on cockatiel's ConsecutiveBreaker. cockatiel lets one probe run in
// half-open but makes other callers wait for it; a mesh must fail them fast instead (Hystrix#1647),
// so callers arriving while a probe is in flight get WEFT_ERR_CIRCUIT_OPEN at once.
import { createRequire } from 'node:module'
import type * as Cockatiel from 'cockatiel'
import type { CircuitBreakerPolicy } from 'cockatiel'
import { isWeftError } from '../errors/index.js'
import type { UpstreamResponse } from '../stack/call.js'

// cockatiel is CommonJS. Loaded by `import`, Node 20's CommonJS translator (which lexes the package's
// re-exports for named exports) left every process ~5 MB more RSS than require() does (measured
// with all of Weft's dependencies loaded: 77 vs 71 MB). Same module instance either way.
const cockatiel = createRequire(import.meta.url)('cockatiel') as typeof Cockatiel
const { CircuitState, ConsecutiveBreaker, circuitBreaker, handleWhen } = cockatiel
/** cockatiel's error for a call refused by an open (or probing) circuit. */
export const BrokenCircuitError = cockatiel.BrokenCircuitError

export const CIRCUIT_STATE_NAME = ['closed', 'open', 'half-open', 'isolated'] as const

/** Attempt failures that say the endpoint is unwell (not the caller giving up). */
export function isUpstreamFailure(err: unknown): boolean {
  return isWeftError(err) && (err.code === 'WEFT_ERR_CONNECT_FAILED' || err.code === 'WEFT_ERR_TLS_HANDSHAKE' || err.code === 'WEFT_ERR_UPSTREAM_RESET' || err.code === 'WEFT_ERR_UPSTREAM_TIMEOUT')
}

/** Call failures that count against the service's circuit: the upstream failed the caller. */
export function isServiceFailure(err: unknown): boolean {
  if (!isWeftError(err)) return false
  switch (err.code) {
    case 'WEFT_ERR_CONNECT_FAILED':
    case 'WEFT_ERR_TLS_HANDSHAKE':
    case 'WEFT_ERR_UPSTREAM_RESET':
    case 'WEFT_ERR_UPSTREAM_TIMEOUT':
    case 'WEFT_ERR_RETRY_BUDGET_EXHAUSTED':
      return true
    // WEFT_ERR_NO_ENDPOINTS does not count: nothing was sent, and an open circuit would keep
    // failing calls for halfOpenAfter after discovery finds endpoints.
    case 'WEFT_ERR_DEADLINE_EXCEEDED':
      // The service's own timeout ran out; a short deadline handed down by our caller does not count.
      return err.details.propagatedDeadline !== true
    default:
      return false
  }
}

export class ServiceBreaker {
  readonly policy: CircuitBreakerPolicy
  private readonly counter: Cockatiel.ConsecutiveBreaker

  constructor(
    readonly consecutiveFailures: number,
    readonly halfOpenAfterMs: number,
    onState: (state: Cockatiel.CircuitState) => void,
  ) {
    this.counter = new ConsecutiveBreaker(consecutiveFailures)
    this.policy = circuitBreaker(
      handleWhen(isServiceFailure).orWhenResult((r) => (r as UpstreamResponse).statusCode >= 500),
      { halfOpenAfter: halfOpenAfterMs, breaker: this.counter },
    )
    this.policy.onStateChange(onState)
  }

  /** Set between reaching the failure threshold and cockatiel opening the circuit (async). */
  private opening = false

  get state(): string {
    return this.opening ? 'open' : CIRCUIT_STATE_NAME[this.policy.state]!
  }

  get closed(): boolean {
    return !this.opening && this.policy.state === CircuitState.Closed
  }

  /**
   * Records the outcome of a call that ran while the circuit was closed, synchronously: a success
   * resets the consecutive count, a failure adds to it (what cockatiel's closed state does). The
   * failure that reaches the threshold is handed to cockatiel, which opens the circuit; until it
   * has, `opening` makes new calls fail fast, so no call slips through in between.
   */
  record(res: UpstreamResponse | undefined, err: unknown): void {
    if (this.opening || this.policy.state !== CircuitState.Closed) return
    const failed = res ? res.statusCode >= 500 : isServiceFailure(err)
    if (!failed) return this.counter.success()
    if (!this.counter.failure()) return
    this.opening = true
    void this.policy
      .execute(() => (res ? Promise.resolve(res) : Promise.reject(err)))
      .catch(() => {})
      .finally(() => {
        this.opening = false
      })
  }

  /** Runs fn through the breaker; rejects with BrokenCircuitError when open or probing. */
  execute(fn: () => Promise<UpstreamResponse>): Promise<UpstreamResponse> {
    if (this.opening || this.policy.state === CircuitState.HalfOpen) return Promise.reject(new BrokenCircuitError('probe in flight'))
    return this.policy.execute(fn)
  }
}

