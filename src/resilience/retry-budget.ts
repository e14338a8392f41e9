// RetryBudget (Linkerd/Finagle): retries may add at most `ratio` of recent requests plus
// `minPerSecond` × ttl, over a sliding window of `ttl` split into one-second buckets. A deposit
// is one counter increment; no timers.

const BUCKETS = 10

export class RetryBudget {
  private readonly bucketMs: number
  private readonly requests = new Float64Array(BUCKETS)
  private readonly retries = new Float64Array(BUCKETS)
  private current = 0
  private currentStart = 0

  constructor(
    readonly ratio: number,
    readonly minPerSecond: number,
    readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.bucketMs = ttlMs / BUCKETS
  }

  /** Counts one request (every logical call deposits); `now` saves a clock read when known. */
  deposit(now?: number): void {
    this.advance(now)
    this.requests[this.current]!++
  }

  /** Takes one retry from the budget; false when spent. */
  tryWithdraw(): boolean {
    if (this.available() < 1) return false
    this.retries[this.current]!++
    return true
  }

  /** Retries still allowed in the current window (for explain/status output). */
  available(): number {
    this.advance()
    let req = 0
    let ret = 0
    for (let i = 0; i < BUCKETS; i++) {
      req += this.requests[i]!
      ret += this.retries[i]!
    }
    return Math.max(0, Math.floor(this.ratio * req + this.minPerSecond * (this.ttlMs / 1000) - ret))
  }

  private advance(now?: number): void {
    const t = now ?? this.now()
    if (this.currentStart === 0) {
      this.currentStart = t
      return
    }
    let steps = Math.floor((t - this.currentStart) / this.bucketMs)
    if (steps <= 0) return
    this.currentStart += steps * this.bucketMs
    if (steps > BUCKETS) steps = BUCKETS
    while (steps-- > 0) {
      this.current = (this.current + 1) % BUCKETS
      this.requests[this.current] = 0
      this.retries[this.current] = 0
    }
  }
}
