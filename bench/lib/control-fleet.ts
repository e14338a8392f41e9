// control-push's moving parts, each in a process of its own: the daemon (lib/daemon-host.ts) and the
// watching instances (lib/watchers.ts, split over several processes), with the admin calls on it.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { forkTs, nextMessage } from './load.js'

export interface Mem {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

/** The daemon's memory, and its open descriptors now and at most since the last ask (Linux; undefined elsewhere). */
export type DaemonMem = Mem & { fds?: number; fdsPeak?: number }

const lib = (file: string) => fileURLToPath(new URL(file, import.meta.url))

export interface Daemon {
  url: string
  joinToken: string
  mem(): Promise<DaemonMem>
  /** Its CPU time so far (user + system, µs). */
  cpuMicros(): Promise<number>
  /** How many instances' ACKs it answered since `since` (epoch ms), and when the last (epoch ms). */
  acks(since: number): Promise<{ instances: number; last: number }>
  admin(method: 'GET' | 'POST', path: string, body?: string): Promise<any>
  /** Instances SYNCED (ACKed) at the daemon's current version, per GET /v1/status. */
  synced(): Promise<{ version: number; synced: number }>
  stop(): Promise<void>
}

/**
 * A daemon with the embedded store in a fresh data dir, in a process of its own (its memory is then
 * its own). `allLoopback`: it listens on 0.0.0.0 so that instances can dial it on other loopback
 * addresses (Fleet.spread).
 */
export async function startDaemon(leaseTtlMs: number, allLoopback: boolean): Promise<Daemon> {
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-daemon-'))
  const child = forkTs(lib('./daemon-host.ts'), [dataDir, String(leaseTtlMs), allLoopback ? '0.0.0.0' : '127.0.0.1'], ['--expose-gc'])
  const url = await nextMessage(child, 30_000, (m) => (m as { url?: string }).url)
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
  const admin = async (method: 'GET' | 'POST', path: string, body?: string): Promise<any> => {
    const res = await request(`${url}${path}`, { method, body, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/yaml' } })
    const text = await res.body.text()
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`)
    return JSON.parse(text)
  }
  return {
    url,
    joinToken: readFileSync(join(dataDir, 'join.token'), 'utf8').trim(),
    admin,
    mem: () => {
      const answer = nextMessage(child, 30_000, (m) => (m as { mem?: DaemonMem }).mem)
      child.send({ mem: true })
      return answer
    },
    cpuMicros: () => {
      const answer = nextMessage(child, 30_000, (m) => (m as { cpu?: number }).cpu)
      child.send({ cpu: true })
      return answer
    },
    acks: (since) => {
      const answer = nextMessage(child, 30_000, (m) => (m as { acks?: { instances: number; last: number } }).acks)
      child.send({ acks: since })
      return answer
    },
    synced: async () => {
      const st = await admin('GET', '/v1/status')
      const synced = st.instances.filter((i: { state: string; ackedVersion: number }) => i.state === 'SYNCED' && i.ackedVersion === st.version).length
      return { version: st.version as number, synced }
    },
    stop: async () => {
      const exited = new Promise((res) => child.once('exit', res))
      child.send({ stop: true })
      await exited
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export interface Fleet {
  n: number
  procs: number
  /** Registered as endpoints (else client-only). */
  serving: boolean
  /** Instances connecting at once, per process. */
  window: number
  /**
   * Process p dials the daemon at 127.0.0.<p+1> (a daemon started with allLoopback). Every
   * instance holds two connections, and all connections to one address and port share this
   * machine's ephemeral port range (28,232 ports here): 10,000 instances to one address fill most
   * of it, and connect() then spends milliseconds searching it for a free port.
   */
  spread: boolean
  /** How long all may take to hold a first view. */
  connectTimeoutMs: number
}

export interface Watchers {
  /** ms from the first instance started to the last one holding its first view (the slowest process). */
  connectMs: number
  /** How many instances hold `version`. */
  progress(version: number): Promise<number>
  /** Epoch ms at which each instance got `version`. */
  times(version: number): Promise<number[]>
  /** Summed memoryUsage() of the instance processes, after a full GC in each. */
  mem(): Promise<Mem>
  stop(): void
}

/** The fleet's watching instances, all holding a first view of `daemon`. */
export async function startWatchers(daemon: Daemon, f: Fleet): Promise<Watchers> {
  const share = Math.ceil(f.n / f.procs)
  const children = Array.from({ length: f.procs }, (_, p) => {
    const count = Math.min(share, f.n - p * share)
    const url = f.spread ? daemon.url.replace('//127.0.0.1:', `//127.0.0.${p + 1}:`) : daemon.url
    return forkTs(lib('./watchers.ts'), [url, daemon.joinToken, String(p * share), String(count), f.serving ? '1' : '0', String(f.window)], ['--expose-gc'])
  })
  const stop = () => children.forEach((c) => c.kill('SIGKILL'))
  const ask = <T>(msg: object, key: string) =>
    Promise.all(children.map((c) => {
      const answer = nextMessage(c, 30_000, (m) => (m as Record<string, T | undefined>)[key])
      c.send(msg)
      return answer
    }))
  try {
    const ready = await Promise.all(children.map(async (c) => {
      const r = await nextMessage(c, f.connectTimeoutMs, (m) => {
        const r = m as { ready?: boolean; ms?: number; error?: string }
        return r.ready || r.error ? r : undefined
      })
      if (r.error) throw new Error(`watchers: ${r.error}`)
      return r.ms!
    }))
    return {
      connectMs: Math.max(...ready),
      progress: async (version) => (await ask<number>({ progress: version }, 'progress')).reduce((s, x) => s + x, 0),
      times: async (version) => (await ask<number[]>({ times: version }, 'times')).flat(),
      mem: async () => {
        const all = await ask<Mem>({ mem: true }, 'mem')
        const sum = (k: keyof Mem) => all.reduce((s, x) => s + x[k], 0)
        return { rss: sum('rss'), heapUsed: sum('heapUsed'), external: sum('external'), arrayBuffers: sum('arrayBuffers') }
      },
      stop,
    }
  } catch (err) {
    stop()
    throw err
  }
}
