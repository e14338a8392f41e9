// Arm hosts: each arm of a scenario runs in its own client process (own heap, JIT, GC and CPU count), driven over IPC.
import type { ChildProcess } from 'node:child_process'
import hdr from 'hdr-histogram-js'
import { closedLoop, forkTs, newHistogram, nextMessage, openLoop, type ClosedResult, type Histogram, type OpenResult, type Send } from './load.js'
import { startCpuProfile } from './cpu-profiler.js'

/** Runs `fn` under the V8 sampling profiler when `file` is set, writing the profile there. */
async function profiled<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn()
  const stop = await startCpuProfile()
  const result = await fn()
  await stop(file)
  return result
}

type Command = { op: 'closed'; ms: number; concurrency: number; profile?: string } | { op: 'open'; rate: number; ms: number; profile?: string }
type Reply = { closed: ClosedResult; extra?: unknown } | { open: OpenResult; hist: string; extra?: unknown } | { error: string }

/** What a scenario's arm hands to its process: its request, its close, and (optionally) what it measured itself. */
export interface ArmClient {
  send: Send
  close(): Promise<void>
  /** Called after each loop: figures the arm collected during it (sent back as `extra`), reset for the next. */
  after?(): unknown
}

/** In the arm's process: runs the loops the main process asks for with `send`, until it goes away. */
export function serveArm({ send, close, after }: ArmClient): void {
  const plain = <T extends { firstError: unknown }>(r: T): T => ({ ...r, firstError: r.firstError === undefined ? undefined : String(r.firstError) })
  process.on('message', (cmd: Command) => {
    const job: Promise<Reply> =
      cmd.op === 'closed'
        ? profiled(cmd.profile, () => closedLoop(send, cmd.concurrency, cmd.ms)).then((r) => ({ closed: plain(r), extra: after?.() }))
        : (async () => {
            const h = newHistogram()
            const r = await profiled(cmd.profile, () => openLoop(send, cmd.rate, cmd.ms, h))
            return { open: plain(r), hist: hdr.encodeIntoCompressedBase64(h), extra: after?.() }
          })()
    job.then(
      (reply) => process.send!(reply),
      (err: unknown) => process.send!({ error: String((err as Error)?.stack ?? err) } satisfies Reply),
    )
  })
  process.on('disconnect', () => void close().finally(() => process.exit(0)))
  process.send!({ ready: true })
}

export interface ArmHost {
  closed(ms: number, concurrency: number, profile?: string): Promise<ClosedResult>
  /** Runs the open loop and adds its latencies to `into`; `extra` is what the arm's `after()` returned. */
  open(rate: number, ms: number, into: Histogram, profile?: string): Promise<OpenResult & { extra?: unknown }>
  stop(): void
}

/** In the main process: forks `file --arm NAME ...args` and waits until it is ready. */
export async function forkArm(file: string, arm: string, args: string[]): Promise<ArmHost> {
  const child: ChildProcess = forkTs(file, ['--arm', arm, ...args], ['--expose-gc'])
  if (process.env.WEFT_BENCH_CHILD_FLAGS) console.error(`arm ${arm}: pid ${child.pid}`)
  await nextMessage(child, 30_000, (m) => ((m as { ready?: boolean }).ready ? true : undefined))
  const ask = async (cmd: Command, ms: number): Promise<Reply> => {
    const answer = nextMessage(child, ms + 60_000, (m) => m as Reply)
    child.send(cmd)
    const reply = await answer
    if ('error' in reply) throw new Error(`arm ${arm}: ${reply.error}`)
    return reply
  }
  return {
    closed: async (ms, concurrency, profile) => ((await ask({ op: 'closed', ms, concurrency, profile }, ms)) as { closed: ClosedResult }).closed,
    open: async (rate, ms, into, profile) => {
      const reply = (await ask({ op: 'open', rate, ms, profile }, ms)) as { open: OpenResult; hist: string; extra?: unknown }
      into.add(hdr.decodeFromCompressedBase64(reply.hist))
      return { ...reply.open, extra: reply.extra }
    },
    stop: () => void child.kill('SIGTERM'),
  }
}
