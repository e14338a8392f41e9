// LoadMonitor: samples this process's event loop (utilization and delay) on an unref'd timer and
// turns it into two things no sidecar can see: a shed decision for the inbound stack, and a load
// figure reported to callers in the `weft-load` response header so their balancers send less to a
// busy instance. Per request it costs a field read; the work is one sample per interval.
import { performance, type EventLoopUtilization } from 'node:perf_hooks'

export interface SheddingSettings {
  /** Shed when event-loop utilization over the last interval is above this (0..1). Default: off. */
  maxEventLoopUtilization?: number
  /** Shed when the event loop was blocked longer than this within the last interval. Default 200 ms. */
  maxEventLoopDelayMs?: number
  /** How often the loop is sampled. Default 100 ms. */
  sampleIntervalMs?: number
}

export const SHEDDING_DEFAULTS = { maxEventLoopDelayMs: 200, sampleIntervalMs: 100 } as const

/**
 * How often the delay probe runs. perf_hooks.monitorEventLoopDelay was tried first: on Node 20 it
 * did not record a 150 ms block at all (its timer measures from the loop's cached clock), so the
 * probe is a timer of ours that notes how late it fires.
 */
const PROBE_MS = 20

/**
 * A late probe counts only when the loop was also busy over the sample (utilization ≥ this). A
 * loop blocked by its own work is busy; a process that was merely off the CPU while idle (a noisy
 * host) is late but not busy, and shedding its traffic would help nobody.
 */
const BUSY_ELU = 0.5

/** How long a shed caller should wait before trying this instance again (retry-after, seconds). */
export const RETRY_AFTER_S = 1

/** On a connection (socket): the number of the last sample reported on it. */
const REPORTED = Symbol('weft.loadReported')
type Connection = { [REPORTED]?: number }

export class LoadMonitor {
  /** Smoothed event-loop utilization (0..1): what callers are told. */
  load = 0
  /** The last sample crossed a shedding threshold. */
  overloaded = false
  /** Why, for the shed error's message and details. */
  reason = ''
  /** The `weft-load` header value, formatted once per sample. */
  header = '0.00'
  /** Samples taken so far: a report is new to a connection when its number differs. */
  samples = 0
  private lastElu: EventLoopUtilization
  private timer: NodeJS.Timeout | undefined
  private probe: NodeJS.Timeout | undefined
  private probeDue = 0
  /** The longest the loop was late for the probe since the last sample (ms). */
  private maxLateMs = 0
  private readonly maxElu: number
  private readonly maxDelayMs: number

  constructor(settings: SheddingSettings | false | undefined) {
    const s = settings === false ? undefined : settings
    this.maxElu = settings === false ? Infinity : s?.maxEventLoopUtilization ?? Infinity
    this.maxDelayMs = settings === false ? Infinity : s?.maxEventLoopDelayMs ?? SHEDDING_DEFAULTS.maxEventLoopDelayMs
    const interval = s?.sampleIntervalMs ?? SHEDDING_DEFAULTS.sampleIntervalMs
    this.lastElu = performance.eventLoopUtilization()
    this.armProbe()
    this.timer = setInterval(() => this.sample(), interval)
    this.timer.unref()
  }

  private armProbe(): void {
    this.probeDue = performance.now() + PROBE_MS
    this.probe = setTimeout(() => {
      const late = performance.now() - this.probeDue
      if (late > this.maxLateMs) this.maxLateMs = late
      this.armProbe()
    }, PROBE_MS)
    this.probe.unref()
  }

  /** Takes one sample now (the timer calls this; tests may too). */
  sample(): void {
    const now = performance.eventLoopUtilization()
    const elu = performance.eventLoopUtilization(now, this.lastElu).utilization
    this.lastElu = now
    const delayMs = Math.max(this.maxLateMs, performance.now() - this.probeDue)
    this.maxLateMs = 0
    // Rises at once, calms down over a few samples, so a burst is seen and a blip soon forgotten.
    this.load = elu > this.load ? elu : this.load * 0.6 + elu * 0.4
    this.header = this.load.toFixed(2)
    this.samples++
    if (elu > this.maxElu) {
      this.overloaded = true
      this.reason = `event-loop utilization ${elu.toFixed(2)} > ${this.maxElu}`
    } else if (delayMs > this.maxDelayMs && elu >= BUSY_ELU) {
      this.overloaded = true
      this.reason = `event loop blocked ${Math.round(delayMs)}ms > ${this.maxDelayMs}ms`
    } else {
      this.overloaded = false
      this.reason = ''
    }
  }

  /**
   * The `weft-load` value for a response on `connection`, or undefined when that connection has
   * carried this sample already. The figure changes once per sample, and the caller's balancer keeps
   * the last one an endpoint reported, so a second copy on the same connection tells it nothing.
   * One on every response cost a bare node:http server ~5,400 instructions a request, 9 % (setHeader
   * takes writeHead(status, headers) off its fast path; valgrind instruction counts, 2026-12-07). A
   * caller hears each sample on every connection it uses, at most once per sampleIntervalMs.
   */
  reportOn(connection: object | null | undefined): string | undefined {
    if (connection == null) return this.header
    const c = connection as Connection
    if (c[REPORTED] === this.samples) return undefined
    c[REPORTED] = this.samples
    return this.header
  }

  close(): void {
    if (this.timer) clearInterval(this.timer)
    if (this.probe) clearTimeout(this.probe)
    this.timer = undefined
    this.probe = undefined
  }
}
