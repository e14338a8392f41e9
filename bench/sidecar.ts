// Scenario: the sidecar topology (app → nginx → mTLS → nginx → app) vs Weft in-process end to end
// (client mesh → mTLS → server mesh), against the same node:http app; a raw undici Pool as the floor.
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import type * as Weft from '../src/index.js'
import { forkArm, type ArmHost } from './lib/arm.js'
import { newHistogram, piledUp, type OpenResult, type Send } from './lib/load.js'
import { flag, fmt, scenario, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'
import { SERVICES, startStack, type Arm, type Stack } from './lib/sidecar-kit.js'
import { PCTS, report, type ClosedRound, type OpenRound, type PathCpu, type Plan } from './lib/sidecar-report.js'

const CONCURRENCY = 32
const RATE = 2_000
const PATH = '/charge'
const FILE = fileURLToPath(import.meta.url)
const silent = { info() {}, warn() {}, error() {} }
const ARMS: Record<Arm, string> = {
  raw: 'raw undici `Pool` → app (plaintext, no proxy: the floor)',
  sidecar: 'undici `Pool` → nginx A → **mTLS** → nginx B → app',
  weft: 'Weft: `checkout` mesh → **mTLS STRICT** → `payments` `mesh.listen` → app',
  'weft-authz': 'Weft as above + AuthorizationPolicy (allow principal checkout)',
}

/** An answer must be 200 `ok`; anything else fails the run, saying what came instead. */
async function checked(what: string, r: { statusCode: number; headers: object; body: { text(): Promise<string> } }): Promise<boolean> {
  const text = await r.body.text()
  if (r.statusCode === 200 && text === 'ok') return true
  throw new Error(`${what}: ${r.statusCode} ${JSON.stringify(r.headers)} ${text.slice(0, 300)}`)
}

/** One GET PATH on `pool`. */
function poolSend(pool: Pool): Send {
  return async () => checked(`GET ${PATH}`, await pool.request({ method: 'GET', path: PATH }))
}

/** In the arm's own process: its client. */
async function makeArm(name: string): Promise<{ send: Send; close(): Promise<void> }> {
  if (name === 'raw' || name === 'sidecar') {
    const [raw, sidecar] = flag('--origins')!.split(',') as [string, string]
    // The mesh's pool options, as in the other benches.
    const pool = new Pool(name === 'raw' ? raw : sidecar, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })
    return { send: poolSend(pool), close: () => pool.close() }
  }
  if (name !== 'weft' && name !== 'weft-authz') throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
  // Until serveArm takes over, nothing else ends this process if the main one dies meanwhile.
  const orphaned = () => process.exit(0)
  process.once('disconnect', orphaned)
  // The mesh under test is the built package (dist/); `npx tsup` first.
  const distEntry = '../dist/index.js'
  const { createMesh } = (await import(distEntry)) as typeof Weft
  const mesh = await createMesh({ service: 'checkout', control: flag('--control')!, token: flag('--token')!, logger: silent })
  const url = `http://${SERVICES[name]}${PATH}`
  const send: Send = async () => checked(`GET ${url}`, await mesh.request(url))
  // Ready once a call went through: the SVID is signed and the server's endpoint is known.
  const deadline = Date.now() + 20_000
  for (;;) {
    const err = await send().then(() => undefined, (e: unknown) => e)
    if (err === undefined && mesh.identity.current()) {
      process.off('disconnect', orphaned)
      return { send, close: () => mesh.close() }
    }
    if (Date.now() > deadline) throw new Error(`checkout could not call ${url} within 20 s: ${String(err)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Fails the run on any failed request: the first error, and the sidecars' logs for that arm. */
function check<T extends { errors: number; requests: number; firstError: unknown }>(r: T, arm: Arm, stack: Stack, phase = ''): T {
  if (r.errors > 0) throw new Error(`${arm}${phase}: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}${stack.diagnose(arm)}`, { cause: r.firstError })
  return r
}

/** Runs `fn` and adds what the arm's server-side processes spent meanwhile (CPU, mTLS handshakes). */
async function withPath<T>(stack: Stack, a: Arm, fn: () => Promise<T>): Promise<T & PathCpu> {
  const s0 = await stack.pathStats(a)
  const r = await fn()
  const s1 = await stack.pathStats(a)
  return { ...r, pathCpuMicros: s1.total - s0.total, proxyCpuMicros: s1.proxies - s0.proxies, handshakes: s1.handshakes - s0.handshakes }
}

/**
 * Runs `body(round)` in steps of `step` rounds (so A/B orders stay paired): at least `min` rounds,
 * at most `max`, and no further step once it would end after `until` (judged by the longest step
 * so far). On a loaded shared machine a round takes several times its nominal length; this keeps
 * the scenario inside its time limit with fewer rounds instead of overrunning it. Returns the count.
 */
async function timedRounds(min: number, max: number, step: number, until: number, body: (round: number) => Promise<void>): Promise<number> {
  let n = 0
  let longest = 0
  while (n < max && (n < min || performance.now() + longest < until)) {
    const t = performance.now()
    for (let i = 0; i < step; i++) await body(n++)
    longest = Math.max(longest, performance.now() - t)
  }
  return n
}

/** The time limit: run.ts's per-scenario budget (90 s; 25 s for --quick), less a margin for teardown. */
const LIMIT_MS = 90_000
const BUDGET_MS = { full: LIMIT_MS - 8_000, quick: 22_000 }

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan: Plan = o.quick
    ? { warmMs: 300, rounds: 2, runMs: 300, openWarmMs: 200, openRounds: 1, openMs: 500, concurrency: CONCURRENCY, rate: RATE }
    : { warmMs: 1_500, rounds: 6, runMs: 1_000, openWarmMs: 500, openRounds: 4, openMs: 2_000, concurrency: CONCURRENCY, rate: RATE }
  if (o.only && !(o.only in ARMS)) throw new Error(`no arm "${o.only}" (have: ${Object.keys(ARMS).join(', ')})`)
  const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
  const started = performance.now()
  const deadline = started + (o.quick ? BUDGET_MS.quick : BUDGET_MS.full)
  const stack = await startStack(arms)
  const hosts = {} as Record<Arm, ArmHost>
  try {
    const args = ['--origins', `${stack.origins.raw},${stack.origins.sidecar}`, '--control', stack.control.url, '--token', stack.control.token]
    // The clients start while the meshed servers do: a Weft client waits until its first call goes through.
    await Promise.all([stack.ready, ...arms.map(async (a) => void (hosts[a] = await forkArm(FILE, a, args)))])
    const startMs = performance.now() - started
    const closed = (a: Arm, ms: number, profile?: string) => withPath(stack, a, async () => check(await hosts[a].closed(ms, CONCURRENCY, profile), a, stack))
    for (const a of arms) await closed(a, plan.warmMs)
    if (o.only) {
      const r = await closed(arms[0]!, o.quick ? 1_000 : ONLY_MS, o.profile)
      const markdown = `${ARMS[arms[0]!]}: ${fmt.int(r.requests / r.seconds)} req/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU/req, ${(r.pathCpuMicros / r.requests).toFixed(1)} µs server-side CPU/req`
      return { title: `sidecar --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    // The closed loop gets its nominal share of the time left; the open loop the rest.
    const closedMs = plan.rounds * plan.runMs
    const openMs = plan.openRounds * plan.openMs + plan.openWarmMs
    const closedUntil = performance.now() + ((deadline - performance.now()) * closedMs) / (closedMs + openMs)
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as ClosedRound[]])) as Record<Arm, ClosedRound[]>
    plan.rounds = await timedRounds(2, plan.rounds, 2, closedUntil, async (round) => {
      // A/B alternation: the order flips every round so drift (other tenants, thermal) cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs))
    })
    const open = Object.fromEntries(arms.map((a) => [a, { merged: newHistogram(), runs: [] as OpenRound[] }])) as Record<Arm, { merged: ReturnType<typeof newHistogram>; runs: OpenRound[] }>
    for (const a of arms) check(await hosts[a].open(RATE, plan.openWarmMs, newHistogram()), a, stack, ' (warm-up)') // warms the generator too
    // A run whose requests piled up past the client's 1,024 in flight (the mesh refuses beyond its
    // concurrencyLimit) measured a queue, not the path: it is reported, thrown away and run once
    // more; a second one, or any other failure, fails the scenario. Seen once on a slow VM
    // (2026-12-08, Weft arm: 2,193 of 4,000 refused), not again in the same scenario alone.
    const redone: string[] = []
    const openRun = async (a: Arm, round: number, retry: boolean): Promise<void> => {
      const h = newHistogram()
      const res: OpenResult & PathCpu = await withPath(stack, a, async () => hosts[a].open(RATE, plan.openMs, h))
      if (retry && piledUp(res)) {
        redone.push(`${ARMS[a]}, round ${round + 1}: up to ${fmt.int(res.maxInFlight)} in flight, ${fmt.int(res.errors)} of ${fmt.int(res.requests)} refused, max send lag ${fmt.int(res.maxSendLagMicros)} µs, ${fmt.int(res.handshakes)} new mTLS handshakes server-side during it; first: ${String(res.firstError)}`)
        return openRun(a, round, false)
      }
      check(res, a, stack)
      open[a].runs.push({ pcts: PCTS.map((p) => h.getValueAtPercentile(p)), res })
      open[a].merged.add(h)
    }
    plan.openRounds = await timedRounds(o.quick ? 1 : 2, plan.openRounds, o.quick ? 1 : 2, deadline, async (round) => {
      for (const a of round % 2 ? [...arms].reverse() : arms) await openRun(a, round, true)
    })
    return report({ quick: o.quick, plan, arms: ARMS, closed: rounds, open, startMs, redone, ...stack.describe })
  } finally {
    for (const h of Object.values(hosts)) h.stop()
    await stack.stop()
  }
}

scenario({ run, arm: makeArm }, LIMIT_MS)
