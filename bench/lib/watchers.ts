// A share of control-push's watching instances in a process of its own: many ControlClients, each
// with its own undici Agent and so its own connections, as separate meshes would have. Split over
// processes because one process may hold at most `ulimit -n` descriptors (20,000 here, the hard
// limit too) and each instance holds two connections (its watch stream, and one for ACKs and
// heartbeats). Forked by bench/control-push.ts with IPC:
//   argv: <daemon url> <join token> <first index> <count> <serving: 1|0> <window: instances connecting at once>
//   sends { ready: true, ms } once every instance has its first view (or { error }),
//   answers { progress: version } with { progress: n } (how many hold that version), { times: version }
//   with { times: number[] } (the epoch ms at which each got it, on this process's clock: the
//   machine's, the one the main process reads), { mem: true } with memoryUsage() after a full GC;
//   exits when the main process goes away.
import { ControlClient, type ControlView } from '../../src/control/client.js'

const [url, token, first, count, serving, connecting] = process.argv.slice(2)
const n = Number(count)
const from = Number(first)
const window = Number(connecting)
const silent = { info() {}, warn() {}, error() {} }

/** Epoch ms, sub-ms precise, comparable across processes on this machine. */
const now = () => performance.timeOrigin + performance.now()
const seen = new Map<number, number[]>()
const clients: ControlClient[] = []

function instance(id: number): ControlClient {
  return new ControlClient({
    urls: [url!],
    token: token!,
    // Serving: the instance is an endpoint of checkout, pushed to every watcher. Client-only: no
    // endpoint, so registrations make no version (control-push.ts says why 10,000 need that).
    registration: serving === '1'
      ? { id: `bench-${id}`, service: 'checkout', address: '127.0.0.1', port: 10_000 + (id % 50_000), protocol: 'http' }
      : { id: `bench-${id}`, service: 'checkout', protocol: 'http' },
    logger: silent,
    // Records the arrival and ACKs at once: no mesh compile, so the figures are the daemon's push and the transport.
    apply: async (view: ControlView) => {
      const at = now()
      let list = seen.get(view.version)
      if (!list) seen.set(view.version, (list = []))
      list.push(at)
      return undefined
    },
  })
}

/** Starts the instances, at most `window` of them still waiting for their first view at any time; ms until all have one. */
async function connect(): Promise<number> {
  const t0 = now()
  let next = 0
  const worker = async () => {
    while (next < n) {
      const c = instance(from + next++)
      clients.push(c)
      c.start()
      if (!(await c.waitForFirstView(60_000))) throw new Error(`instance ${c.id} had no first view within 60 s`)
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker))
  return now() - t0
}

process.on('message', (m: { progress?: number; times?: number; mem?: boolean }) => {
  if (m.progress !== undefined) process.send!({ progress: seen.get(m.progress)?.length ?? 0 })
  if (m.times !== undefined) process.send!({ times: seen.get(m.times) ?? [] })
  if (m.mem) {
    globalThis.gc?.()
    process.send!({ mem: process.memoryUsage() })
  }
})
// No deregistration on the way out: the daemon is stopped with these processes, and 10,000 DELETEs would only add minutes.
process.on('disconnect', () => process.exit(0))
connect().then(
  (ms) => process.send!({ ready: true, ms }),
  (err: unknown) => process.send!({ error: String((err as Error)?.stack ?? err) }),
)
