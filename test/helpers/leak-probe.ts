// Leak probes for the churn tests (RELIABILITY L5): open sockets of this process (from
// /proc/self/fd), the active resources by type (ref'd handles and timers), every timer made in a
// window that is still live (unref'd ones too, which getActiveResourcesInfo does not list), and a
// forced GC before reading heap and RSS.
import assert from 'node:assert/strict'
import { readdirSync, readlinkSync } from 'node:fs'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

setFlagsFromString('--expose-gc')
const gcFn = runInNewContext('gc') as () => void

const tick = (): Promise<void> => new Promise((r) => setImmediate(r))
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Full GCs with turns of the loop between them, so weak callbacks and finalizers run too. */
export async function forceGc(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gcFn()
    await tick()
  }
}

/** Sockets this process holds open: fds whose link reads socket:[inode]. */
export function openSockets(): number {
  let n = 0
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++
    } catch {
      // closed between the listing and the read
    }
  }
  return n
}

/** Active resources by type (process.getActiveResourcesInfo: ref'd handles, requests and timers). */
export function activeResources(): Record<string, number> {
  const out: Record<string, number> = {}
  for (const t of process.getActiveResourcesInfo()) out[t] = (out[t] ?? 0) + 1
  return out
}

export interface Sample {
  sockets: number
  heapUsed: number
  rss: number
  resources: Record<string, number>
}

/** GC, then sockets, heap, RSS and active resources. */
export async function sample(): Promise<Sample> {
  await forceGc()
  const m = process.memoryUsage()
  return { sockets: openSockets(), heapUsed: m.heapUsed, rss: m.rss, resources: activeResources() }
}

/**
 * Polls until the open sockets are at most `limit` (connections closed by a peer or gracefully
 * take a few turns to go); resolves with the last count, whatever it is, after `ms`. The caller
 * asserts; nothing here measures time.
 */
export async function socketsSettle(limit: number, ms = 15_000): Promise<number> {
  const end = Date.now() + ms
  for (;;) {
    const n = openSockets()
    if (n <= limit || Date.now() > end) return n
    await sleep(20)
  }
}

/**
 * Before a baseline: polls until the open-socket count has not changed for 10 polls in a row
 * (connections of a warm-up still closing are gone), or `ms` pass.
 */
export async function socketsSteady(ms = 3_000): Promise<number> {
  const end = Date.now() + ms
  let last = openSockets()
  let same = 0
  while (same < 10 && Date.now() <= end) {
    await sleep(20)
    const n = openSockets()
    same = n === last ? same + 1 : 0
    last = n
  }
  return last
}

/** Polls until `ok()` or `ms` pass; resolves with its last answer. */
export async function settle(ok: () => boolean, ms = 15_000): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (ok()) return true
    if (Date.now() > end) return false
    await sleep(20)
  }
}

/** The heap bound of L5: +10% of the baseline or +2 MB, whichever is larger. */
export function heapLimit(base: number): number {
  return base + Math.max(base * 0.1, 2 * 1024 * 1024)
}

export const mb = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(2) + ' MB'

/** L5's bounds after churn: open sockets within ±5 of the baseline, heap within heapLimit, no more timers and TCP handles active (+2). */
export function assertBackToBaseline(base: Sample, end: Sample): void {
  assert.ok(Math.abs(end.sockets - base.sockets) <= 5, `open sockets back to baseline ±5 (baseline ${base.sockets}, now ${end.sockets})`)
  assert.ok(end.heapUsed <= heapLimit(base.heapUsed), `heapUsed within +10%/+2 MB of baseline (${mb(base.heapUsed)} -> ${mb(end.heapUsed)})`)
  for (const type of ['Timeout', 'TCPSocketWrap', 'TCPWRAP']) {
    const b = base.resources[type] ?? 0
    const e = end.resources[type] ?? 0
    assert.ok(e <= b + 2, `active ${type} not grown (baseline ${b}, now ${e})`)
  }
}

type TimerLike = NodeJS.Timeout & { _destroyed?: boolean; _onTimeout?: unknown }

/**
 * Records every setTimeout/setInterval made through the globals while installed (held weakly, so
 * it retains nothing), to tell later which are still live, ref'd or not. A timer is live until it
 * fires (a timeout) or is cleared; node marks both on the Timeout object (`_destroyed`).
 */
export class TimerTracker {
  private made: WeakRef<TimerLike>[] = []
  private pruneAt = 1024
  private readonly realTimeout = globalThis.setTimeout
  private readonly realInterval = globalThis.setInterval

  install(): this {
    const rt = this.realTimeout
    const ri = this.realInterval
    globalThis.setTimeout = Object.assign((...args: unknown[]) => this.add((rt as (...a: unknown[]) => TimerLike)(...args)), rt) as unknown as typeof setTimeout
    globalThis.setInterval = Object.assign((...args: unknown[]) => this.add((ri as (...a: unknown[]) => TimerLike)(...args)), ri) as unknown as typeof setInterval
    return this
  }

  /** Records a timer; the records of timers already done are dropped now and then (they are no heap to measure). */
  private add(t: TimerLike): TimerLike {
    this.made.push(new WeakRef(t))
    if (this.made.length >= this.pruneAt) {
      this.made = this.made.filter((w) => {
        const x = w.deref()
        return x !== undefined && !x._destroyed
      })
      this.pruneAt = Math.max(1024, this.made.length * 2)
    }
    return t
  }

  uninstall(): void {
    globalThis.setTimeout = this.realTimeout
    globalThis.setInterval = this.realInterval
  }

  /** Timers made while installed that are still live; `match` filters by their callback's source. */
  live(match?: RegExp): TimerLike[] {
    const out: TimerLike[] = []
    for (const w of this.made) {
      const t = w.deref()
      if (!t || t._destroyed) continue
      if (match && !match.test(String(t._onTimeout))) continue
      out.push(t)
    }
    return out
  }

  /** The live timers grouped by their callback's source (first 80 chars): "N× source", for messages. */
  describe(match?: RegExp): string[] {
    const counts = new Map<string, number>()
    for (const t of this.live(match)) {
      const src = String(t._onTimeout).replace(/\s+/g, ' ').slice(0, 80)
      counts.set(src, (counts.get(src) ?? 0) + 1)
    }
    return [...counts].map(([src, n]) => `${n}× ${src}`)
  }
}
