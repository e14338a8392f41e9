// DeadlineWatch: enforces call deadlines without a timer per call. Most calls end long before
// their deadline, so arming and clearing a Node timer for each (~0.3 µs and two objects) is
// wasted work. Calls are linked into one list through fields of their own; a single coarse tick
// walks it and gives a precise timer only to the few whose deadline is near (within two ticks).
// A call that starts with less than that left gets its precise timer at once. The effect is the
// same as a timer per call (expiry fires on time), at a link and an unlink per call.
// (Netty's HashedWheelTimer and Finagle's timer make the same trade: cheap schedule, lazy expiry.)
// A call is unlinked the moment its deadline settles (response committed, call over, cancelled),
// not at the next tick: a list that held finished calls for up to a tick kept ~10 ms of calls
// and everything they reference alive through every young-generation GC in that window, which
// measured ~0.6 µs per request of extra GC and copying at tens of thousands of requests a second.
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
  /** The watch's links (owned by DeadlineWatch; undefined when not on its list). */
  watchPrev?: Watched | undefined
  watchNext?: Watched | undefined
  watchedBy?: DeadlineWatch | undefined
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
  private head: Watched | undefined
  private tail: Watched | undefined
  private count = 0
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly tickMs = TICK_MS) {}

  /** Starts watching `call` (its deadline is set); `now` is the caller's performance.now(). */
  watch(call: Watched, now: number): void {
    if (call.deadline - now <= 2 * this.tickMs) return this.arm(call, now)
    if (call.watchedBy !== undefined) return
    call.watchedBy = this
    call.watchPrev = this.tail
    call.watchNext = undefined
    if (this.tail) this.tail.watchNext = call
    else this.head = call
    this.tail = call
    this.count++
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.tick(), this.tickMs)
      // The tick never keeps a process alive: the call's own socket or back-off does that.
      this.timer.unref()
    }
  }

  /** The call's deadline no longer applies: forget it now (a no-op when it is not on the list). */
  unwatch(call: Watched): void {
    if (call.watchedBy !== this) return
    const prev = call.watchPrev
    const next = call.watchNext
    if (prev) prev.watchNext = next
    else this.head = next
    if (next) next.watchPrev = prev
    else this.tail = prev
    call.watchPrev = call.watchNext = call.watchedBy = undefined
    this.count--
  }

  /** Calls still on the list (for tests and explain output). */
  get size(): number {
    return this.count
  }

  private arm(call: Watched, now: number): void {
    const t = setTimeout(fire, Math.max(0, call.deadline - now), call)
    t.unref()
  }

  private tick(): void {
    const now = performance.now()
    const horizon = now + 2 * this.tickMs
    for (let call = this.head; call !== undefined; ) {
      const next = call.watchNext
      // A settled call whose owner did not unwatch it (a test's stand-in) is dropped here.
      if (call.deadlineSettled) this.unwatch(call)
      else if (call.deadline <= horizon) {
        this.unwatch(call)
        this.arm(call, now)
      }
      call = next
    }
    this.timer = this.count > 0 ? setTimeout(() => this.tick(), this.tickMs).unref() : undefined
  }
}

/** One watch per process (per worker thread): every mesh's calls share its tick. */
export const deadlineWatch = new DeadlineWatch()
