// The load generator of bench/http-server.ts in its own process: closed loops of GET requests through one undici Pool per origin, on command over IPC.
import { Pool } from 'undici'
import { closedLoop, newHistogram, openLoop, type Send } from './load.js'

/** A closed loop of `concurrency` in flight, or with `rate` an open loop at that many requests a second. */
export type LoadCommand = { origin: string; path: string; body: string; ms: number; concurrency: number; rate?: number }

/**
 * Answers the mesh sheds (503 with this code, when its event loop was blocked past the threshold:
 * on a shared VM, a process left off the CPU for a while). They are the server working as meant,
 * not failures, so they are counted apart; anything else that is not 200 with the body fails the run.
 */
const SHED = 'WEFT_ERR_SERVER_OVERLOADED'
let shed = 0

/** One Pool and one send per origin, made on first use and kept (the client's JIT warms once for all). */
const sends = new Map<string, Send>()
const pools: Pool[] = []

function sendTo(origin: string, path: string, body: string): Send {
  const key = `${origin}${path}`
  let send = sends.get(key)
  if (!send) {
    const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 }) // the mesh's pool options, as in http-client.ts
    pools.push(pool)
    send = async () => {
      const r = await pool.request({ method: 'GET', path })
      const text = await r.body.text()
      if (r.statusCode === 200 && text === body) return true
      if (r.statusCode === 503 && r.headers['weft-error-code'] === SHED) {
        shed++
        return true
      }
      throw new Error(`GET ${origin}${path}: ${r.statusCode} ${JSON.stringify(r.headers)} ${text.slice(0, 300)}`)
    }
    sends.set(key, send)
  }
  return send
}

// Forked with IPC by startLoadGen (server-hosts.ts): sends { ready }, answers each command with { closed } (and its shed count) or { error }.
process.on('message', (cmd: LoadCommand) => {
  shed = 0
  const send = sendTo(cmd.origin, cmd.path, cmd.body)
  const run = cmd.rate === undefined
    ? closedLoop(send, cmd.concurrency, cmd.ms)
    : openLoop(send, cmd.rate, cmd.ms, newHistogram()).then((r) => ({ requests: r.requests, errors: r.errors, firstError: r.firstError, seconds: cmd.ms / 1000, cpuMicros: r.cpuMicros }))
  run.then(
    (r) => process.send!({ closed: { ...r, shed, firstError: r.firstError === undefined ? undefined : String(r.firstError) } }),
    (err: unknown) => process.send!({ error: String((err as Error)?.stack ?? err) }),
  )
})
process.on('disconnect', () => void Promise.all(pools.map((p) => p.destroy())).finally(() => process.exit(0)))
process.send!({ ready: true })
