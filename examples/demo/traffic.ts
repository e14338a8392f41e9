// The demo's client: N workers POSTing /checkout/:cart to checkout over plain HTTP (an undici Pool,
// no mesh), each with a deadline budget in weft-deadline-ms, until the run's time is up.
import { Pool } from 'undici'

export interface ClientStats {
  startedAt: number
  elapsedMs: number
  requests: number
  ok: number
  failed: number
  /** Final status codes the client saw (0 = the request threw). */
  byStatus: Map<number, number>
  /** Request latency in ms as the client sees it. */
  latencies: number[]
}

export interface TrafficOptions {
  durationMs: number
  concurrency: number
  /** The budget each request gives checkout (weft-deadline-ms); checkout's mesh passes on what is left. */
  deadlineMs: number
  /** Stops the run early (e.g. on Ctrl-C). */
  signal?: AbortSignal
}

export function newClientStats(): ClientStats {
  return { startedAt: performance.now(), elapsedMs: 0, requests: 0, ok: 0, failed: 0, byStatus: new Map(), latencies: [] }
}

/** Runs the load until durationMs has passed (or signal aborts); resolves when every worker is done. */
export async function drive(origin: string, stats: ClientStats, opts: TrafficOptions): Promise<void> {
  const pool = new Pool(origin, { connections: opts.concurrency })
  const end = stats.startedAt + opts.durationMs
  let cart = 0
  const worker = async (): Promise<void> => {
    while (performance.now() < end && !opts.signal?.aborted) {
      const t0 = performance.now()
      let status = 0
      try {
        const res = await pool.request({
          method: 'POST',
          path: `/checkout/${++cart}`,
          headers: { 'content-type': 'application/json', 'weft-deadline-ms': String(opts.deadlineMs) },
          body: JSON.stringify({ amount: Math.ceil(Math.random() * 10_000) }),
        })
        await res.body.dump()
        status = res.statusCode
      } catch {
        status = 0
      }
      stats.latencies.push(performance.now() - t0)
      stats.requests++
      stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1)
      if (status >= 200 && status < 300) stats.ok++
      else stats.failed++
    }
  }
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, worker))
  } finally {
    stats.elapsedMs = performance.now() - stats.startedAt
    await pool.close()
  }
}
