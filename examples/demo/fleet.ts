// The demo's side of the payments instances: forks one process per instance (payments.ts, run with
// tsx) with the control daemon's address and join token, waits for each to report its port, tells them when the busy
// phase starts and ends, and at the end collects their counts and ledger-call metrics and makes
// sure every one of them has exited.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ControlInfo, FromChild, InstanceSpec, Phase, PhaseCounts, ToChild } from './instances.js'

export interface Instance extends InstanceSpec {
  address: string
  pid: number
  /** Filled in by stop(): what the instance answered in each phase. */
  phases: PhaseCounts[]
  /** Filled in by stop(): the instance's metrics lines about its calls to the ledger. */
  ledgerMetrics: string
}

export interface Fleet {
  instances: Instance[]
  setPhase(phase: Phase): void
  /** Stops every instance gracefully (collecting its counts), killing any that takes too long. */
  stop(): Promise<void>
  /** Kills every instance still running, at once (the hard stop). */
  kill(): void
}

const CHILD = fileURLToPath(new URL('./payments.ts', import.meta.url))
const STOP_TIMEOUT_MS = 3000

export async function startFleet(specs: readonly InstanceSpec[], control: ControlInfo, readyTimeoutMs = 15_000): Promise<Fleet> {
  const children: ChildProcess[] = []
  const kill = (): void => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  }
  let instances: Instance[]
  try {
    instances = await Promise.all(specs.map(async (spec) => {
      const child = fork(CHILD, [JSON.stringify(spec), JSON.stringify(control)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
      children.push(child)
      const port = await ready(child, spec.name, readyTimeoutMs)
      return { ...spec, address: `127.0.0.1:${port}`, pid: child.pid ?? 0, phases: [], ledgerMetrics: '' }
    }))
  } catch (err) {
    kill()
    throw err
  }
  const tell = (m: ToChild): void => {
    for (const c of children) if (c.connected) c.send(m)
  }
  let stopping: Promise<void> | undefined
  const stopAll = async (): Promise<void> => {
    await Promise.all(children.map(async (child, i) => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      const stats = new Promise<Extract<FromChild, { type: 'stats' }> | undefined>((resolve) => {
        child.on('message', (m: FromChild) => m.type === 'stats' && resolve(m))
        void exited.then(() => resolve(undefined))
      })
      if (child.connected) child.send({ type: 'stop' } satisfies ToChild)
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      const got = await stats
      instances[i]!.phases = got?.phases ?? []
      instances[i]!.ledgerMetrics = got?.ledgerMetrics ?? ''
      await exited
      clearTimeout(timer)
    }))
  }
  return {
    instances,
    setPhase: (phase) => tell({ type: 'phase', phase }),
    kill,
    stop: () => (stopping ??= stopAll()),
  }
}

function ready(child: ChildProcess, name: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`payments ${name} did not report its port within ${timeoutMs}ms`)), timeoutMs)
    child.on('message', (m: FromChild) => {
      if (m.type !== 'ready') return
      clearTimeout(timer)
      resolve(m.port)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`payments ${name} exited before it was ready (code ${code}, signal ${signal})`))
    })
    child.once('error', reject)
  })
}
