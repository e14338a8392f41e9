// Load generation shared by the scenarios: child processes, the upstream, closed loop and coordinated-omission-free open loop.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import hdr from 'hdr-histogram-js'
import { startAllocMeter, type AllocFigures } from './alloc-meter.js'

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

/**
 * Forks a .ts file with IPC (killed when this process exits; it should exit on 'disconnect').
 * execArgv is explicit so a --cpu-prof on this process never spreads to the child.
 */
export function forkTs(file: string, args: string[], execArgv: string[] = []): ChildProcess {
  return forkJs(file, args, [...execArgv, '--import', 'tsx'])
}

/**
 * Extra node/V8 flags for every bench child process, for looking into one: e.g.
 * WEFT_BENCH_CHILD_FLAGS='--trace-pretenuring-statistics' (how the span-context pretenuring in
 * src/inbound/telemetry-layer.ts was found). Unset in every recorded run.
 */
const CHILD_FLAGS = process.env.WEFT_BENCH_CHILD_FLAGS?.split(' ').filter(Boolean) ?? []

/** forkTs for a .js/.mjs file, without tsx (whose loader thread alone adds ~30 MB of RSS to a process). */
export function forkJs(file: string, args: string[], execArgv: string[] = []): ChildProcess {
  const child = fork(file, args, { execArgv: [...CHILD_FLAGS, ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  child.on('exit', () => children.delete(child))
  return child
}

/** Stops a lib/daemon-host.ts child: asks with `{ stop: true }` (it closes its daemon), SIGKILL after 5 s. */
export async function stopDaemonHost(daemon: ChildProcess): Promise<void> {
  if (daemon.exitCode !== null) return
  daemon.send({ stop: true })
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      daemon.kill('SIGKILL')
      resolve()
    }, 5_000)
    daemon.once('exit', () => {
      clearTimeout(t)
      resolve()
    })
  })
}

/** The first IPC message from `child` that `accept` takes, or a rejection if it exits or `ms` pass first. */
export function nextMessage<T>(child: ChildProcess, ms: number, accept: (m: unknown) => T | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      fn()
    }
    const onMessage = (m: unknown) => {
      const v = accept(m)
      if (v !== undefined) done(() => resolve(v))
    }
    const onExit = (code: number | null) => done(() => reject(new Error(`child exited (code ${code})`)))
    const timer = setTimeout(() => done(() => reject(new Error(`no answer from child within ${ms / 1000} s`))), ms)
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Starts lib/upstream.ts in its own process with `servers` listeners on 127.0.0.1. */
export async function startUpstream(servers: number): Promise<Upstream> {
  const child = forkTs(fileURLToPath(new URL('./upstream.ts', import.meta.url)), ['--servers', String(servers)])
  const ports = await nextMessage(child, 15_000, (m) => (m as { ports?: number[] }).ports)
  return {
    ports,
    cpuMicros: () => {
      const answer = nextMessage(child, 5_000, (m) => (m as { cpu?: NodeJS.CpuUsage }).cpu)
      child.send('cpu')
      return answer.then((cpu) => cpu.user + cpu.system)
    },
    stop: () => void child.kill('SIGTERM'),
  }
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

export interface ClosedResult extends Counts, AllocFigures {
  seconds: number
  /** This process's CPU (user + system) during the run, µs. */
  cpuMicros: number
}

/**
 * `concurrency` workers, each sending the next request as soon as the last one finished, for `ms`.
 * No forced GC before a closed-loop run: right after a full GC, V8 starts again from a small young
 * generation and a heap whose pages must be faulted back in, which made the following second 2-4x
 * slower here, and slower still for the arm that allocates more (issue 2 notes: raw 33,003 req/s
 * without the forced GC, 14,482 with it, in one run). Each arm has its own process, so no arm
 * inherits another's garbage; every process is warmed up before the measured rounds.
 */
export async function closedLoop(send: Send, concurrency: number, ms: number): Promise<ClosedResult> {
  const counts: Counts = { requests: 0, errors: 0, firstError: undefined }
  const alloc = startAllocMeter()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const end = t0 + ms
  const worker = async () => {
    while (performance.now() < end) await track(counts, send())
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { ...counts, seconds, cpuMicros: cpu.user + cpu.system, ...alloc() }
}

export type Histogram = ReturnType<typeof hdr.build>

/** Latency histogram in µs, 1 µs to 60 s, 3 significant digits. */
export function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })
}

/** Collects GC pauses (count, total and longest, ms) until stopped. */
function gcWatch(): () => { count: number; totalMs: number; maxMs: number } {
  const seen = { count: 0, totalMs: 0, maxMs: 0 }
  const add = (entries: PerformanceEntry[]) => {
    for (const e of entries) {
      seen.count++
      seen.totalMs += e.duration
      seen.maxMs = Math.max(seen.maxMs, e.duration)
    }
  }
  const obs = new PerformanceObserver((list) => add(list.getEntries()))
  obs.observe({ entryTypes: ['gc'] })
  return () => {
    add(obs.takeRecords())
    obs.disconnect()
    return seen
  }
}


export interface OpenResult extends Counts {
  /** GC pauses during the run. */
  gc: { count: number; totalMs: number; maxMs: number }
  /** Most requests in flight at once. */
  maxInFlight: number
  /** Worst lateness of a send behind its schedule, µs (the generator's own lag). */
  maxSendLagMicros: number
  /**
   * This process's CPU (user + system, all threads: the clock worker's too) from the first send to
   * the last completion, µs; the worker's start-up, before the first send, is left out.
   */
  cpuMicros: number
}

// The open loop's clock: a worker thread sleeps (Atomics.wait, no spinning) until just before each
// send time and pings the main thread, which then waits out the last few µs with setImmediate.
// Node's own timers tick in whole milliseconds, and spinning on setImmediate for the whole run
// would allocate ~1M Immediates a second, whose GC pauses would land in the measured tail.
const CLOCK = `
const { workerData, parentPort } = require('node:worker_threads')
const { start, interval, count, early } = workerData
const cell = new Int32Array(new SharedArrayBuffer(4))
for (let i = 0; i < count; i++) {
  const wait = start + i * interval - early - (performance.timeOrigin + performance.now())
  if (wait > 0) Atomics.wait(cell, 0, 0, wait)
  parentPort.postMessage(i)
}`

/** Milliseconds on a clock shared with the worker thread. */
const clock = () => performance.timeOrigin + performance.now()

/**
 * Sends `rate` requests a second for `ms`, each on its own schedule whatever the earlier ones do,
 * and records into `hist` the time from each request's *scheduled* send time to its completion
 * (coordinated-omission corrected, as wrk2 does).
 */
export async function openLoop(send: Send, rate: number, ms: number, hist: Histogram): Promise<OpenResult> {
  const counts: Counts = { requests: 0, errors: 0, firstError: undefined }
  const gcStop = gcWatch()
  const interval = 1000 / rate
  const total = Math.round((rate * ms) / 1000)
  const start = clock() + 20
  const worker = new Worker(CLOCK, { eval: true, workerData: { start, interval, count: total, early: 0.2 } })
  let sent = 0
  let done = 0
  let inFlight = 0
  let maxInFlight = 0
  let maxLag = 0
  let cpu0: NodeJS.CpuUsage | undefined
  return new Promise((resolve, reject) => {
    worker.once('error', reject)
    const finish = (scheduled: number) => () => {
      hist.recordValue(Math.max(1, Math.round((clock() - scheduled) * 1000)))
      inFlight--
      if (++done === total) {
        const cpu = process.cpuUsage(cpu0)
        void worker.terminate()
        resolve({ ...counts, gc: gcStop(), maxInFlight, maxSendLagMicros: Math.round(maxLag * 1000), cpuMicros: cpu.user + cpu.system })
      }
    }
    const fire = () => {
      const now = clock()
      const scheduled = start + sent * interval
      if (scheduled > now) return void setImmediate(fire)
      cpu0 ??= process.cpuUsage()
      sent++
      maxLag = Math.max(maxLag, now - scheduled)
      maxInFlight = Math.max(maxInFlight, ++inFlight)
      void track(counts, send()).then(finish(scheduled))
    }
    worker.on('message', fire)
  })
}

/**
 * True when an open-loop run's requests piled up until the mesh client's concurrencyLimit (1,024 in
 * flight) refused some: the machine did not keep up with the rate, and the run's latency is that
 * queue's, not the path's. overhead.ts then measures at a lower rate; sidecar.ts runs the arm again.
 */
export function piledUp(r: Pick<OpenResult, 'errors' | 'maxInFlight'>): boolean {
  return r.errors > 0 && r.maxInFlight >= 1_000
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}
