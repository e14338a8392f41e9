// DeadlineWatch: enforces call deadlines without a timer per call. Most calls end long before
// their deadline, so arming and clearing a Node timer for each (~0.3 µs and two objects) is
// wasted work. Calls are pushed onto one list; a single coarse tick walks it, forgets calls that
// are over, and gives a precise timer only to the few whose deadline is near (within two ticks).
// A call that starts with less than that left gets its precise timer at once. The effect is the
// same as a timer per call (expiry fires on time), at a push and one visit per call.
// (Netty's HashedWheelTimer and Finagle's timer make the same trade: cheap schedule, lazy expiry.)

/**
 * How early a Node timer (or one in grpc-js) may run against performance.now()/Date.now(): timers
 * count from the loop's cached clock. Code telling "the deadline fired" from "something else" allows this.
 */
export const TIMER_SLACK_MS = 5

/** What the watch needs from a call. */
export interface Watched {
  /** Absolute deadline on the performance.now() clock. */
  readonly deadline: number
  /** True once the deadline no longer applies (response committed, call over, or cancelled). */
  readonly deadlineSettled: boolean
  /** Called once, on time, if the deadline passes while it still applies. */
  expire(): void
}

const TICK_MS = 10

function fire(call: Watched): void {
  if (call.deadlineSettled) return
  // Node's timers count from the loop's cached clock, which can be a few ms behind
  // performance.now(): a timer may run before the deadline it was set for. Never expire early.
  const left = call.deadline - performance.now()
  if (left > 0) {
    setTimeout(fire, Math.ceil(left), call).unref()
    return
  }
  call.expire()
}

export class DeadlineWatch {
  private list: Watched[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly tickMs = TICK_MS) {}

  /** Starts watching `call` (its deadline is set); `now` is the caller's performance.now(). */
  watch(call: Watched, now: number): void {
    if (call.deadline - now <= 2 * this.tickMs) return this.arm(call, now)
    this.list.push(call)
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.tick(), this.tickMs)
      // The tick never keeps a process alive: the call's own socket or back-off does that.
      this.timer.unref()
    }
  }

  /** Calls still on the list (for tests and explain output). */
  get size(): number {
    return this.list.length
  }

  private arm(call: Watched, now: number): void {
    const t = setTimeout(fire, Math.max(0, call.deadline - now), call)
    t.unref()
  }

  private tick(): void {
    const now = performance.now()
    const list = this.list
    const horizon = now + 2 * this.tickMs
    let kept = 0
    for (let i = 0; i < list.length; i++) {
      const call = list[i]!
      if (call.deadlineSettled) continue
      if (call.deadline <= horizon) this.arm(call, now)
      else list[kept++] = call
    }
    list.length = kept
    this.timer = kept > 0 ? setTimeout(() => this.tick(), this.tickMs).unref() : undefined
  }
}

/** One watch per process (per worker thread): every mesh's calls share its tick. */
export const deadlineWatch = new DeadlineWatch()
