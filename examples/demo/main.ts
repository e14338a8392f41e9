// `npm run demo`: a plain HTTP client → checkout (Express + weft) → payments (3 Fastify + weft
// processes behind a 90/10 canary, one of them CPU-busy for the middle of the run) → ledger (gRPC,
// two instances behind one mesh in this process, one of them failing 10 % with UNAVAILABLE) for
// ~10 s, then a summary of the three hops.
import type { Logger } from '../../src/index.js'
import { startCheckout, type Checkout } from './checkout.js'
import { CANARY, checkoutConfig } from './config.js'
import { startFleet, type Fleet } from './fleet.js'
import { intro } from './intro.js'
import { BUSY, BUSY_WINDOW, PAYMENTS, type Phase } from './instances.js'
import { startLedger, type Ledger } from './ledger.js'
import { sumMetric } from './metrics.js'
import { Progress, progressLine, type Live } from './progress.js'
import { summaryTable } from './summary.js'
import { drive, newClientStats } from './traffic.js'

const CONCURRENCY = 16
const DEADLINE_MS = 1500

function readSeconds(): number {
  const raw = process.env.DEMO_SECONDS
  if (raw === undefined || raw === '') return 10
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0 || n > 60) {
    console.error(`demo: DEMO_SECONDS must be a number of seconds in (0, 60] (got "${raw}")`)
    process.exit(2)
  }
  return n
}

const seconds = readSeconds()
const durationMs = seconds * 1000
let fleet: Fleet | undefined
// Bounded whatever happens: 15 s to start the instance processes, the run, 10 s to drain and close;
// then a hard stop that kills the instance processes (they also exit by themselves when we do).
const hardStop = setTimeout(() => {
  process.stderr.write(`\ndemo: still running ${seconds + 25}s after start; hard stop\n`)
  fleet?.kill()
  process.exit(2)
}, durationMs + 25_000)
hardStop.unref()

const progress = new Progress()
const startedAt = performance.now()
const stamp = (): string => `${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)}s`
let nameOf = new Map<string, string>()
const label = (msg: string): string => msg.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, (a) => (nameOf.has(a) ? `${nameOf.get(a)} (${a})` : a))
// Mesh log lines (ejections, circuit changes) go above the progress line instead of through it.
const logger: Logger = {
  info: (msg) => progress.event(`  ${stamp()}  weft: ${label(msg)}`),
  warn: (msg) => progress.event(`  ${stamp()}  weft warn: ${label(msg)}`),
  error: (msg) => progress.event(`  ${stamp()}  weft error: ${label(msg)}`),
}

const stop = new AbortController()
const onSigint = (): void => {
  progress.event('  interrupted: stopping traffic (Ctrl-C again to quit now)')
  stop.abort()
  process.once('SIGINT', () => {
    fleet?.kill()
    process.exit(130)
  })
}
process.once('SIGINT', onSigint)

let checkout: Checkout | undefined
let ledger: Ledger | undefined
const timers: NodeJS.Timeout[] = []
try {
  ledger = await startLedger(logger)
  fleet = await startFleet(PAYMENTS, ledger.instances.map(({ name, address }) => ({ name, address })))
  const { instances } = fleet
  nameOf = new Map([...instances, ...ledger.instances].map((i) => [i.address, i.name]))
  checkout = await startCheckout(checkoutConfig(instances), logger)
  const { mesh, stats: outbound } = checkout
  const busy = instances.find((i) => i.cpuBusy)
  const busyWindow: [number, number] = [seconds * BUSY_WINDOW.from, seconds * BUSY_WINDOW.to]

  console.log(intro({ checkout: checkout.origin, instances, ledgers: ledger.instances, busyWindow, concurrency: CONCURRENCY, deadlineMs: DEADLINE_MS, seconds }))

  const client = newClientStats()
  const live: Live = { retries: 0, ejections: 0, phase: 0, servedAtPhaseStart: new Map() }
  const setPhase = (phase: Phase): void => {
    live.phase = phase
    live.servedAtPhaseStart = new Map(outbound.servedBy)
    fleet?.setPhase(phase)
    if (busy) progress.event(`  ${stamp()}  demo: ${busy.name} ${phase === 1 ? `starts busy-looping its event loop (${BUSY.blockMs}ms of every ${BUSY.everyMs}ms)` : 'is idle again'}`)
  }
  timers.push(setTimeout(() => setPhase(1), busyWindow[0] * 1000), setTimeout(() => setPhase(2), busyWindow[1] * 1000))
  let running = true
  const readLive = async (): Promise<void> => {
    const text = await mesh.metrics()
    live.retries = sumMetric(text, 'weft_retries_total')
    live.ejections = sumMetric(text, 'weft_endpoint_ejections_total')
  }
  const tick = (): void => {
    void readLive().catch(() => {}).then(() => {
      if (running) progress.update(progressLine(client, outbound, instances, durationMs, live))
    })
  }
  timers.push(setInterval(tick, progress.tty ? 200 : 1000))
  await drive(checkout.origin, client, { durationMs, concurrency: CONCURRENCY, deadlineMs: DEADLINE_MS, signal: stop.signal })
  running = false
  for (const t of timers) clearTimeout(t)
  // Stopped early (Ctrl-C): the busy window ends where the run did.
  busyWindow[1] = Math.max(busyWindow[0], Math.min(busyWindow[1], client.elapsedMs / 1000))
  await readLive()
  progress.update(progressLine(client, outbound, instances, durationMs, live))
  progress.done()

  const metrics = await mesh.metrics()
  await checkout.close()
  await fleet.stop()
  const ledgerMetrics = await ledger.mesh.metrics()
  await ledger.close()
  console.log(summaryTable({ client, outbound, instances, concurrency: CONCURRENCY, deadlineMs: DEADLINE_MS, canary: CANARY, busyWindow, metrics, ledgers: ledger.instances, ledgerMetrics }))
} finally {
  for (const t of timers) clearTimeout(t)
  progress.done()
  await checkout?.close()
  await fleet?.stop()
  await ledger?.close()
  process.removeListener('SIGINT', onSigint)
}
