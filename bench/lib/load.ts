// Load generators shared by the scenarios: the upstream child, a closed loop (fixed concurrency)
// and an open loop (fixed rate, latency from each request's scheduled send time).
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import hdr from 'hdr-histogram-js'

/** One request; resolves true on a good answer, false (or throws) otherwise. */
export type Send = () => Promise<boolean>

export interface Upstream {
  ports: number[]
  /** The child's CPU time so far, in µs (user + system). */
  cpuMicros(): Promise<number>
  stop(): void
}

const children = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

/** Starts lib/upstream.ts in its own process with `servers` listeners on 127.0.0.1. */
export function startUpstream(servers: number): Promise<Upstream> {
  const file = fileURLToPath(new URL('./upstream.ts', import.meta.url))
  // execArgv set explicitly so a --cpu-prof on the parent never profiles the server.
  const child = fork(file, ['--servers', String(servers)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('upstream did not start within 15 s')), 15_000)
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`upstream exited early (code ${code})`)))
    child.once('message', (msg: { ports: number[] }) => {
      clearTimeout(timer)
      resolve({
        ports: msg.ports,
        cpuMicros: () =>
          new Promise((res) => {
            child.once('message', (m: { cpu: NodeJS.CpuUsage }) => res(m.cpu.user + m.cpu.system))
            child.send('cpu')
          }),
        stop: () => {
          child.kill('SIGTERM')
          children.delete(child)
        },
      })
    })
  })
}

export interface Counts {
  requests: number
  errors: number
  firstError: unknown
}

function track(counts: Counts, p: Promise<boolean>): Promise<void> {
  return p.then(
    (ok) => {
      counts.requests++
      if (!ok) {
        counts.errors++
        counts.firstError ??= new Error('bad status or body')
      }
    },
    (err: unknown) => {
      counts.requests++
      counts.errors++
      counts.firstError ??= err
    },
  )
}

export interface ClosedResult extends Counts {
  seconds: number
  /** Client process CPU (user + system) during the run, µs. */
  cpuMicros: number
  /** Upstream child CPU during the run, µs (when an upstream is given). */
  serverCpuMicros: number
}

/** `concurrency` workers, each sending the next request as soon as the last one finished, for `ms`. */
export async function closedLoop(send: Send, concurrency: number, ms: number, upstream?: Upstream): Promise<ClosedResult> {
  const counts: Counts = { requests: 0, errors: 0, firstError: undefined }
  const server0 = upstream ? await upstream.cpuMicros() : 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const end = t0 + ms
  const worker = async () => {
    while (performance.now() < end) await track(counts, send())
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const server1 = upstream ? await upstream.cpuMicros() : 0
  return { ...counts, seconds, cpuMicros: cpu.user + cpu.system, serverCpuMicros: server1 - server0 }
}

export type Histogram = ReturnType<typeof hdr.build>

/** Latency histogram in µs, 1 µs to 60 s, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

export interface OpenResult extends Counts {
  /** Most requests in flight at once. */
  maxInFlight: number
  /** Worst lateness of a send behind its schedule, µs (the generator's own lag). */
  maxSendLagMicros: number
}

/**
 * Sends `rate` requests a second for `ms`, each on its own schedule whatever the earlier ones do,
 * and records into `hist` the time from each request's *scheduled* send time to its completion
 * (coordinated-omission corrected, as wrk2 does). Between sends it yields with setImmediate
 * (or a timer when the next send is > 2 ms away), so I/O keeps flowing.
 */
export function openLoop(send: Send, rate: number, ms: number, hist: Histogram): Promise<OpenResult> {
  const counts: Counts = { requests: 0, errors: 0, firstError: undefined }
  const interval = 1000 / rate
  const total = Math.round((rate * ms) / 1000)
  const t0 = performance.now() + 1
  let sent = 0
  let done = 0
  let inFlight = 0
  let maxInFlight = 0
  let maxLag = 0
  return new Promise((resolve) => {
    const finish = (scheduled: number) => () => {
      hist.recordValue(Math.max(1, Math.round((performance.now() - scheduled) * 1000)))
      inFlight--
      if (++done === total) resolve({ ...counts, maxInFlight, maxSendLagMicros: Math.round(maxLag * 1000) })
    }
    const tick = () => {
      const now = performance.now()
      while (sent < total && t0 + sent * interval <= now) {
        const scheduled = t0 + sent * interval
        sent++
        if (now - scheduled > maxLag) maxLag = now - scheduled
        if (++inFlight > maxInFlight) maxInFlight = inFlight
        void track(counts, send()).then(finish(scheduled))
      }
      if (sent === total) return
      const wait = t0 + sent * interval - performance.now()
      if (wait > 2) setTimeout(tick, wait - 1)
      else setImmediate(tick)
    }
    tick()
  })
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
