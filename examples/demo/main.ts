// `npm run demo`: a control daemon (`weft daemon`, embedded store) with which every service
// registers, then a plain HTTP client → checkout (Express + weft) → payments (3 Fastify + weft
// processes; all to v1 until the 90/10 canary route is applied through the daemon mid-run; one of
// them CPU-busy for the middle of the run) → ledger (gRPC, two instances in this process, one of
// them failing 10 % with UNAVAILABLE) for ~10 s, then a summary of the three hops and `weft status`.
import type { Logger, Mesh } from '../../src/index.js'
import { startCheckout, type Checkout } from './checkout.js'
import { CANARY, CANARY_AT, canaryRoute, meshPolicy } from './config.js'
import { startDemoDaemon, type DemoDaemon } from './daemon.js'
import { startFleet, type Fleet } from './fleet.js'
import { intro } from './intro.js'
import { BUSY, BUSY_WINDOW, PAYMENTS, type Phase } from './instances.js'
import { startLedger, type Ledger } from './ledger.js'
import { sumMetric } from './metrics.js'
import { Progress, progressLine, type Live } from './progress.js'
import { summaryTable, type Canary } from './summary.js'
import { drive, newClientStats } from './traffic.js'
import { deniedCall } from './denied.js'

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
let daemon: DemoDaemon | undefined
const timers: NodeJS.Timeout[] = []
try {
  // The daemon's own lines: only warnings and errors.
  daemon = await startDemoDaemon({ ...logger, info: () => {} })
  await daemon.apply(meshPolicy())
  const control = { url: daemon.url, token: daemon.joinToken }
  ledger = await startLedger(control, logger)
  fleet = await startFleet(PAYMENTS, control)
  const { instances } = fleet
  nameOf = new Map([...instances, ...ledger.instances].map((i) => [i.address, i.name]))
  checkout = await startCheckout(control, logger)
  const { mesh, stats: outbound } = checkout
  await waitForEndpoints(mesh, 'payments', instances.length)
  const busy = instances.find((i) => i.cpuBusy)
  const busyWindow: [number, number] = [seconds * BUSY_WINDOW.from, seconds * BUSY_WINDOW.to]

  const canaryAt = seconds * CANARY_AT
  console.log(intro({ checkout: checkout.origin, daemon: daemon.url, instances, ledgers: ledger.instances, busyWindow, canaryAt, concurrency: CONCURRENCY, deadlineMs: DEADLINE_MS, seconds }))

  const client = newClientStats()
  const live: Live = { retries: 0, ejections: 0, phase: 0, servedAtPhaseStart: new Map() }
  const setPhase = (phase: Phase): void => {
    live.phase = phase
    live.servedAtPhaseStart = new Map(outbound.servedBy)
    fleet?.setPhase(phase)
    if (busy) progress.event(`  ${stamp()}  demo: ${busy.name} ${phase === 1 ? `starts busy-looping its event loop (${BUSY.blockMs}ms of every ${BUSY.everyMs}ms)` : 'is idle again'}`)
  }
  timers.push(setTimeout(() => setPhase(1), busyWindow[0] * 1000), setTimeout(() => setPhase(2), busyWindow[1] * 1000))
  // Mid-run, the canary route goes in through the daemon, as `weft apply -f canary.yaml` would; the
  // split changes live once checkout's mesh has the new version (its 'config' event).
  const canary: Canary = { atSeconds: canaryAt, servedBefore: new Map() }
  timers.push(setTimeout(() => {
    const t0 = performance.now()
    void daemon!.apply(canaryRoute()).then((version) => {
      const live = (): void => {
        canary.servedBefore = new Map(outbound.servedBy)
        canary.liveAfterMs = performance.now() - t0
        canary.version = version
        progress.event(`  ${stamp()}  demo: applied route payments-canary v1 ${CANARY.v1} / v2 ${CANARY.v2} through the daemon (version ${version}); live on checkout ${canary.liveAfterMs.toFixed(0)} ms later`)
      }
      if (mesh.configVersion >= version) return live()
      const onConfig = (e: { version: number }): void => {
        if (e.version < version) return
        mesh.off('config', onConfig)
        live()
      }
      mesh.on('config', onConfig)
    }, (err: Error) => progress.event(`  ${stamp()}  demo: applying the canary failed: ${err.message}`))
  }, canaryAt * 1000))
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
  // While every instance still runs: what the daemon says about them, and one call the policy denies.
  const status = await daemon.status()
  const top = await daemon.top(6)
  const denied = await deniedCall(daemon).catch((err: Error) => [`the denied-call step failed: ${err.message}`])
  await checkout.close()
  await fleet.stop()
  const ledgerMetrics = await ledger.metrics()
  await ledger.close()
  console.log(summaryTable({ client, outbound, instances, concurrency: CONCURRENCY, deadlineMs: DEADLINE_MS, canary: CANARY, canaryRun: canary, busyWindow, metrics, ledgers: ledger.instances, ledgerMetrics }))
  console.log('\nidentity  (STRICT mTLS between the services, SPIFFE IDs from the daemon\'s CA; payments accepts only checkout, ledger only payments)')
  console.log(denied.map((l) => `  ${l}`).join('\n'))
  console.log(`\nweft status  (the control daemon at ${daemon.url.replace('http://', '')}, embedded store; at the end of the traffic, before the services stopped)`)
  console.log(status.replace(/^/gm, '  ').trimEnd())
  console.log('\nweft top -w 60s  (what the instances reported to the daemon with their heartbeats, every 1.5 s)')
  console.log(top.replace(/^(?=.)/gm, '  ').trimEnd())
} finally {
  for (const t of timers) clearTimeout(t)
  progress.done()
  await checkout?.close()
  await fleet?.stop()
  await ledger?.close()
  await daemon?.close()
  process.removeListener('SIGINT', onSigint)
}

/** Waits (bounded) until the mesh's snapshot has all `n` registered endpoints of `service`. */
async function waitForEndpoints(mesh: Mesh, service: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while ((mesh.snapshot?.lookup(service)?.runtime.endpoints.list().length ?? 0) < n) {
    if (Date.now() > deadline) throw new Error(`checkout did not learn ${n} ${service} endpoints from the daemon within 10 s`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
