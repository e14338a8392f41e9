// `npm run demo`: three payments instances behind a 90/10 canary, driven through mesh.fetch for ~10 s, then a summary.
import { createMesh, type Logger, type Mesh } from '../../src/index.js'
import { CANARY, meshConfig } from './config.js'
import { Progress, progressLine, sumMetric, summaryTable, type Live } from './report.js'
import { startPayments } from './servers.js'
import { drive, newStats } from './traffic.js'

const CONCURRENCY = 16

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
// Bounded whatever happens: the run, plus 10 s to drain and close, then a hard stop.
const hardStop = setTimeout(() => {
  process.stderr.write(`\ndemo: still running ${seconds + 10}s after start; hard stop\n`)
  process.exit(2)
}, durationMs + 10_000)
hardStop.unref()

const progress = new Progress()
const stats = newStats()
const startedAt = performance.now()
const payments = await startPayments()
const nameOf = new Map(payments.instances.map((i) => [i.address, i.name]))
const label = (msg: string): string => msg.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, (a) => (nameOf.has(a) ? `${nameOf.get(a)} (${a})` : a))
const stamp = (): string => `${((performance.now() - startedAt) / 1000).toFixed(1).padStart(5)}s`
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
  process.once('SIGINT', () => process.exit(130))
}
process.once('SIGINT', onSigint)

let mesh: Mesh | undefined
let ticker: NodeJS.Timeout | undefined
try {
  mesh = await createMesh({ service: 'checkout', config: meshConfig(payments.instances), logger })
  const m = mesh

  console.log('Weft demo: checkout → payments through an in-process mesh\n')
  for (const i of payments.instances) {
    console.log(`  payments ${i.name.padEnd(5)} ${i.address.padEnd(16)} version=${i.version} zone=${i.zone}${i.failRate ? `  (fails ${i.failRate * 100}% with 503)` : ''}`)
  }
  console.log(`\n  route payments-canary: v1 ${CANARY.v1} / v2 ${CANARY.v2}; retries, budget and breaker at their defaults;`)
  console.log('  outlier detection: 3 consecutive 5xx eject an endpoint for 2s (longer each time)')
  console.log(`  driving ${CONCURRENCY} concurrent calls for ${seconds}s: GET, and POST with an Idempotency-Key\n`)

  const live: Live = { retries: 0, ejections: 0 }
  let running = true
  const readLive = async (): Promise<void> => {
    const text = await m.metrics()
    live.retries = sumMetric(text, 'weft_retries_total')
    live.ejections = sumMetric(text, 'weft_endpoint_ejections_total')
  }
  const tick = (): void => {
    void readLive().catch(() => {}).then(() => {
      if (running) progress.update(progressLine(stats, payments.instances, durationMs, live))
    })
  }
  ticker = setInterval(tick, progress.tty ? 200 : 1000)
  await drive(m, stats, { durationMs, concurrency: CONCURRENCY, signal: stop.signal })
  running = false
  clearInterval(ticker)
  await readLive()
  progress.update(progressLine(stats, payments.instances, durationMs, live))
  progress.done()

  console.log(summaryTable({ stats, instances: payments.instances, concurrency: CONCURRENCY, canary: CANARY, metrics: await m.metrics() }))
} finally {
  if (ticker) clearInterval(ticker)
  progress.done()
  await mesh?.close()
  await payments.close()
  process.removeListener('SIGINT', onSigint)
}
