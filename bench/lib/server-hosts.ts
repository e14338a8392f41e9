// The main process's handles on bench/http-server.ts's children: one server app per process (CPU, GC, profiler on request) and the load generator.
import { fileURLToPath } from 'node:url'
import { forkTs, nextMessage, type ClosedResult } from './load.js'
import type { LoadCommand } from './load-gen.js'

export interface AppHost {
  origin: string
  /** The server process's CPU time so far (user + system, µs), after a full GC when `gc` is set. */
  cpuMicros(gc?: boolean): Promise<number>
  /** The server process's minor page faults so far (first touches of memory; ~11 µs each on some evenings of this VM). */
  pageFaults(): Promise<number>
  /** Bytes on the server's V8 heap after a full GC. */
  heapBytes(): Promise<number>
  /** Starts the V8 sampling profiler (250 µs) in the server process. */
  profileStart(): Promise<void>
  /** Stops it and writes the .cpuprofile to `file`. */
  profileStop(file: string): Promise<void>
  stop(): void
}

/** A closed loop's figures; `shed` of its `requests` were answered 503 by the mesh's shedding (not errors). */
export type LoadResult = ClosedResult & { shed: number }

export interface LoadGen {
  /** A closed loop of GET `path` on `origin`, `concurrency` in flight, for `ms`; every answer must be 200 with `body` (or shed). */
  closed(origin: string, path: string, body: string, ms: number, concurrency: number): Promise<LoadResult>
  /** An open loop of GET `path` on `origin` at `rate` requests a second for `ms` (same checks). */
  fixed(origin: string, path: string, body: string, ms: number, rate: number): Promise<LoadResult>
  stop(): void
}

const lib = (file: string) => fileURLToPath(new URL(file, import.meta.url))

/** Forks lib/app-server.ts running `app`, listening on 127.0.0.1. */
export async function startApp(app: string): Promise<AppHost> {
  const child = forkTs(lib('./app-server.ts'), ['--app', app], ['--expose-gc'])
  const port = await nextMessage(child, 30_000, (m) => (m as { port?: number }).port)
  const ask = async <T>(cmd: object, pick: (m: Record<string, unknown>) => T | undefined): Promise<T> => {
    const answer = nextMessage(child, 30_000, (m) => {
      const r = m as Record<string, unknown>
      return 'error' in r ? r : pick(r) === undefined ? undefined : r
    })
    child.send(cmd)
    const r = await answer
    if ('error' in r) throw new Error(`app ${app}: ${String(r.error)}`)
    return pick(r)!
  }
  return {
    origin: `http://127.0.0.1:${port}`,
    cpuMicros: (gc = false) => ask({ op: 'cpu', gc }, (m) => m.cpu as NodeJS.CpuUsage | undefined).then((c) => c.user + c.system),
    pageFaults: () => ask({ op: 'cpu' }, (m) => m.faults as number | undefined),
    heapBytes: () => ask({ op: 'heap' }, (m) => m.heap as number | undefined),
    profileStart: () => ask({ op: 'profile-start' }, (m) => m.profiling as true | undefined).then(() => {}),
    profileStop: (file) => ask({ op: 'profile-stop', file }, (m) => m.profiled as true | undefined).then(() => {}),
    stop: () => void child.kill('SIGTERM'),
  }
}

/** Forks lib/load-gen.ts (--expose-gc stays available to experiments; measured runs force no GC, see closedLoop). */
export async function startLoadGen(): Promise<LoadGen> {
  const child = forkTs(lib('./load-gen.ts'), [], ['--expose-gc'])
  await nextMessage(child, 30_000, (m) => ((m as { ready?: boolean }).ready ? true : undefined))
  const command = async (cmd: LoadCommand): Promise<LoadResult> => {
    const answer = nextMessage(child, cmd.ms + 60_000, (m) => m as { closed: LoadResult } | { error: string })
    child.send(cmd)
    const r = await answer
    if ('error' in r) throw new Error(`load generator: ${r.error}`)
    return r.closed
  }
  return {
    closed: (origin, path, body, ms, concurrency) => command({ origin, path, body, ms, concurrency }),
    fixed: (origin, path, body, ms, rate) => command({ origin, path, body, ms, concurrency: 0, rate }),
    stop: () => void child.kill('SIGTERM'),
  }
}
