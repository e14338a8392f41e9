// The demo's load: N workers calling mesh.fetch('http://payments/charge') in a loop, GETs and keyed POSTs.
import { randomUUID } from 'node:crypto'
import type { Mesh } from '../../src/index.js'

export interface TrafficStats {
  startedAt: number
  elapsedMs: number
  requests: number
  ok: number
  failed: number
  gets: number
  posts: number
  /** Final status codes the application saw (0 = the call threw). */
  byStatus: Map<number, number>
  /** Error codes of calls that threw (WeftError codes, or the error's name). */
  errors: Map<string, number>
  /** Final responses by the x-served-by header (instance name). */
  servedBy: Map<string, number>
  /** Call latency in ms as the application sees it, retries included. */
  latencies: number[]
}

export interface TrafficOptions {
  durationMs: number
  concurrency: number
  /** Share of calls that are POSTs (with an Idempotency-Key, so the mesh may retry them). */
  postShare?: number
  /** Stops the run early (e.g. on Ctrl-C). */
  signal?: AbortSignal
}

export function newStats(): TrafficStats {
  return { startedAt: performance.now(), elapsedMs: 0, requests: 0, ok: 0, failed: 0, gets: 0, posts: 0, byStatus: new Map(), errors: new Map(), servedBy: new Map(), latencies: [] }
}

const bump = <K>(m: Map<K, number>, k: K): void => void m.set(k, (m.get(k) ?? 0) + 1)

/** Runs the load until durationMs has passed (or signal aborts); resolves when every worker is done. */
export async function drive(mesh: Mesh, stats: TrafficStats, opts: TrafficOptions): Promise<void> {
  const end = stats.startedAt + opts.durationMs
  const postShare = opts.postShare ?? 0.3
  const worker = async (): Promise<void> => {
    while (performance.now() < end && !opts.signal?.aborted) {
      const post = Math.random() < postShare
      const t0 = performance.now()
      let status = 0
      try {
        const res = post
          ? await mesh.fetch('http://payments/charge', {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
            body: JSON.stringify({ amount: Math.ceil(Math.random() * 10_000), currency: 'EUR' }),
          })
          : await mesh.fetch('http://payments/charge?order=' + Math.floor(Math.random() * 1e6))
        await res.arrayBuffer()
        status = res.status
        const by = res.headers.get('x-served-by')
        if (by) bump(stats.servedBy, by)
      } catch (err) {
        bump(stats.errors, errorCode(err))
      }
      stats.latencies.push(performance.now() - t0)
      stats.requests++
      if (post) stats.posts++
      else stats.gets++
      bump(stats.byStatus, status)
      if (status >= 200 && status < 300) stats.ok++
      else stats.failed++
    }
  }
  await Promise.all(Array.from({ length: opts.concurrency }, worker))
  stats.elapsedMs = performance.now() - stats.startedAt
}

/** fetch wraps dispatcher errors in TypeError('fetch failed'); the WeftError is its cause. */
function errorCode(err: unknown): string {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    if (!e.cause) return e.name
  }
  return String(err)
}
