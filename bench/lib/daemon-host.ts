// A control daemon in a process of its own, for the control-plane bench: its memory is then its
// own. argv: data dir, lease TTL in ms (default 60 s), listen host (default 127.0.0.1). Sends
// { url } over IPC once listening; answers { cpu: true } with its CPU time so far (µs),
// { acks: since } with { acks: { instances, last } } (how many instances' ACKs it answered since
// then, epoch ms, and when the last), { mem: true } with process.memoryUsage() after a full GC (run
// with --expose-gc) and its open descriptors now and at most since the last ask (Linux only: each
// watching instance costs it one or two, against a limit of `ulimit -n`), and { stop: true } by
// exiting. WEFT_BENCH_DEBUG=1 shows its warnings (dropped streams, refused calls).
import { subscribe } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readdirSync } from 'node:fs'
import { startDaemon } from '../../src/daemon/index.js'

const [dataDir, lease, host] = process.argv.slice(2)
const quiet = { info() {}, warn() {}, error() {} }
const logger = process.env.WEFT_BENCH_DEBUG ? { ...quiet, warn: console.warn, error: console.error } : quiet
const daemon = await startDaemon({ listen: `${host ?? '127.0.0.1'}:0`, dataDir: dataDir!, leaseTtlMs: Number(lease ?? 60_000), print: () => {}, logger })

const fds = (): number | undefined => {
  try {
    return readdirSync('/proc/self/fd').length
  } catch {
    return undefined
  }
}
// Sampled, so a burst of connections between two asks (all instances ACKing at once) is seen.
let fdsPeak = fds()
if (fdsPeak !== undefined) setInterval(() => (fdsPeak = Math.max(fdsPeak!, fds()!)), 250).unref()

// Each ACK the daemon answered 200 (it records the ACK before answering): when, and whose. Seen
// here, not by the instance, whose request may have timed out meanwhile (it then sends it again
// with the next ping) though the daemon took it; and without polling GET /v1/status, whose answer
// (megabytes at 10,000 instances) would load the very daemon being timed. Epoch ms: the clock
// the other bench processes stamp with.
const ACK = /^\/v1\/instances\/([^/?]+)\/ack$/
let acks: { at: number; id: string }[] = []
subscribe('http.server.response.finish', (m) => {
  const { request, response } = m as { request: IncomingMessage; response: ServerResponse }
  const id = request.method === 'POST' && response.statusCode === 200 ? ACK.exec(request.url ?? '')?.[1] : undefined
  if (id !== undefined) acks.push({ at: performance.timeOrigin + performance.now(), id })
})

// Never outlive the bench: the IPC channel closes when the parent exits, however it exits.
process.on('disconnect', () => process.exit(0))
process.on('message', (m: { mem?: boolean; cpu?: boolean; acks?: number; stop?: boolean }) => {
  if (m.acks !== undefined) {
    acks = acks.filter((a) => a.at >= m.acks!)
    process.send!({ acks: { instances: new Set(acks.map((a) => a.id)).size, last: acks.length ? acks[acks.length - 1]!.at : 0 } })
  }
  if (m.cpu) {
    const cpu = process.cpuUsage()
    process.send!({ cpu: cpu.user + cpu.system })
  }
  if (m.mem) {
    globalThis.gc?.()
    globalThis.gc?.()
    const now = fds()
    process.send!({ mem: { ...process.memoryUsage(), fds: now, fdsPeak: fdsPeak === undefined ? undefined : Math.max(fdsPeak, now!) } })
    fdsPeak = now
  }
  if (m.stop) void daemon.close().finally(() => process.exit(0))
})
process.send!({ url: daemon.url })
