// Scenario (RELIABILITY L8): at a fixed 5,000 req/s, the latency Weft adds in the request's own path
// (raw undici Pool vs mesh.request, same meshed server, same run), and the share of the event loop
// that metrics and policy work take in a mesh client and a meshed server.
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import hdr from 'hdr-histogram-js'
import type * as Weft from '../src/index.js'

// The built package (dist/), as in the other benches.
const distEntry = '../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
import type { ArmClient } from './lib/arm.js'
import { forkArm, type ArmHost } from './lib/arm.js'
import { attribute, type Attribution } from './lib/attribute.js'
import { benchRoute } from './lib/bench-route.js'
import { inPathRecorder, newNsHistogram, type InPathFigures } from './lib/in-path.js'
import { forkTs, median, newHistogram, nextMessage, piledUp, type OpenResult } from './lib/load.js'
import { flag, fmt, scenario, table, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

const RATE = 5_000
const PATH = '/api/items?id=1'
const PCTS = [50, 90, 99, 99.9]
/**
 * L8's X, set once: the added in-path p99 at 5,000 req/s this scenario measured when it was written
 * (2026-12-07, eight full runs on this 2-core VM: medians 26.8 to 45.4 µs, single runs 13.8 to 52.0
 * µs), rounded up. A later run over 1.1 × X is a regression to look into, not noise to wave through:
 * change X only with a note saying why.
 */
const X_MICROS = 50
/** Issue 2 / issue 7: at most 100 µs added p99 at a fixed rate (report-only here: the in-path figure is a lower bound). */
const ADDED_P99_GOAL_MICROS = 100
/** L8: metrics and policy work under 5 % of the event loop. */
const ELU_SHARE_GOAL = 0.05
const silent = { info() {}, warn() {}, error() {} }
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  raw: 'raw undici `Pool.request`',
  mesh: 'Weft `mesh.request`',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

/** In the arm's own process: the client, with its in-path time recorded (lib/in-path.ts). */
async function makeArm(name: string): Promise<ArmClient> {
  const port = flag('--port')!
  const origin = `http://127.0.0.1:${port}`
  if (name === 'raw') {
    const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 }) // the mesh's pool options
    const rec = inPathRecorder(async () => {
      const r = await pool.request({ method: 'GET', path: PATH })
      return r.statusCode === 200 && (await r.body.text()) === 'ok'
    })
    return { send: rec.send, after: rec.after, close: () => pool.close() }
  }
  if (name !== 'mesh') throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
  const mesh = await createMesh({
    service: 'checkout',
    logger: silent,
    config: [
      { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'bench' }, spec: { endpoints: [{ address: `127.0.0.1:${port}` }] } },
      benchRoute([{ subset: {} }], [{ subset: {} }]),
    ],
  })
  const rec = inPathRecorder(async () => {
    const r = await mesh.request(`http://bench${PATH}`)
    return r.statusCode === 200 && (await r.body.text()) === 'ok'
  })
  return { send: rec.send, after: rec.after, close: () => mesh.close() }
}

interface Server {
  port: number
  profile(op: 'start' | 'stop', file?: string): Promise<void>
  elu(): Promise<{ idle: number; active: number }>
  stop(): void
}

async function startServer(): Promise<Server> {
  const child = forkTs(fileURLToPath(new URL('./lib/meshed-upstream.ts', import.meta.url)), [])
  const port = await nextMessage(child, 30_000, (m) => (m as { port?: number }).port)
  return {
    port,
    profile: async (op, file) => {
      const answer = nextMessage(child, 30_000, (m) => (m as { profiled?: boolean }).profiled)
      child.send({ profile: op, file })
      await answer
    },
    elu: () => {
      const answer = nextMessage(child, 5_000, (m) => (m as { elu?: { idle: number; active: number } }).elu)
      child.send('elu')
      return answer
    },
    stop: () => void child.kill('SIGTERM'),
  }
}

interface Run {
  e2e: number[]
  inPath: number[]
  res: OpenResult
  /** The server's event-loop utilisation over the run. */
  serverElu: number
}

/** Per arm: every run's histograms merged, and each run's own percentiles. */
type Merged = Record<Arm, { e2e: ReturnType<typeof newHistogram>; inPath: ReturnType<typeof newNsHistogram>; runs: Run[] }>

/**
 * A run in which this machine did not keep up with the open loop: requests piled up until the mesh
 * client's concurrency limit (1,024 in flight) refused some. Latency read off such a run is queueing,
 * not Weft; the scenario measures again at half the rate instead of failing (2026-12-07, 23:39 UTC:
 * on a VM ~3x slower than usual, 919 of 5,000 requests were refused and the whole bench failed).
 */
class RateNotHeld extends Error {}
/** The lowest rate tried before the scenario gives up. */
const MIN_RATE = 250

type Plan = { rate: number; warmMs: number; runs: number; runMs: number; profileMs: number }

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan: Plan = o.quick ? { rate: 1_000, warmMs: 300, runs: 1, runMs: 500, profileMs: 500 } : { rate: RATE, warmMs: 1_000, runs: 3, runMs: 2_000, profileMs: 2_000 }
  // `--rate N` starts at another rate (to see where this machine stops holding one).
  if (flag('--rate') !== undefined) plan.rate = Number(flag('--rate'))
  const server = await startServer()
  const hosts = {} as Record<Arm, ArmHost>
  try {
    for (const a of Object.keys(ARMS) as Arm[]) hosts[a] = await forkArm(FILE, a, ['--port', String(server.port)])
    const notHeld: string[] = []
    for (let rate = plan.rate; ; rate = Math.round(rate / 2)) {
      try {
        return await measure(o.quick, { ...plan, rate }, server, hosts, notHeld)
      } catch (err) {
        if (!(err instanceof RateNotHeld) || rate / 2 < MIN_RATE) throw err
        notHeld.push(err.message)
        console.error(`overhead: ${err.message}; measuring again at ${fmt.int(Math.round(rate / 2))} req/s`)
      }
    }
  } finally {
    for (const h of Object.values(hosts)) h.stop()
    server.stop()
  }
}

async function measure(quick: boolean, plan: Plan, server: Server, hosts: Record<Arm, ArmHost>, notHeld: string[]): Promise<ScenarioResult> {
  const out = fileURLToPath(new URL('./.out/', import.meta.url))
  const merged = Object.fromEntries((Object.keys(ARMS) as Arm[]).map((a) => [a, { e2e: newHistogram(), inPath: newNsHistogram(), runs: [] as Run[] }])) as Merged
  const once = async (a: Arm, ms: number, profile?: string) => {
    const e2e = newHistogram()
    const elu0 = await server.elu()
    const res = await hosts[a].open(plan.rate, ms, e2e, profile)
    const elu1 = await server.elu()
    const figures = res.extra as InPathFigures
    if (piledUp(res)) {
      throw new RateNotHeld(`${fmt.int(plan.rate)} req/s was not held (${a} arm: up to ${fmt.int(res.maxInFlight)} requests in flight, ${fmt.int(res.errors)} of ${fmt.int(res.requests)} refused; first: ${String(res.firstError)})`)
    }
    if (res.errors > 0) throw new Error(`${a}: ${res.errors} of ${res.requests} requests failed; first: ${String(res.firstError)}`)
    if (figures.unmarked > 0) throw new Error(`${a}: ${figures.unmarked} requests completed without both in-path marks`)
    const inPath = hdr.decodeFromCompressedBase64(figures.hist)
    const active = elu1.active - elu0.active
    const run: Run = { e2e: PCTS.map((p) => e2e.getValueAtPercentile(p)), inPath: PCTS.map((p) => inPath.getValueAtPercentile(p) / 1000), res, serverElu: active / (active + elu1.idle - elu0.idle) }
    return { run, e2e, inPath }
  }
  // Warm-up: a closed loop first (16 in flight: it cannot overload anything), then the open loop.
  // Started cold at the full rate, the processes' code not yet optimised fell behind here, the
  // requests piled up past the mesh client's concurrency limit (1,024 in flight), and it failed calls.
  for (const a of Object.keys(ARMS) as Arm[]) {
    const r = await hosts[a].closed(plan.warmMs, 16)
    if (r.errors > 0) throw new Error(`${a}: ${r.errors} of ${r.requests} warm-up requests failed; first: ${String(r.firstError)}`)
  }
  for (const a of Object.keys(ARMS) as Arm[]) await once(a, plan.warmMs)
  for (let i = 0; i < plan.runs; i++) {
    for (const a of (i % 2 ? ['mesh', 'raw'] : ['raw', 'mesh']) as Arm[]) {
      const { run, e2e, inPath } = await once(a, plan.runMs)
      merged[a].runs.push(run)
      merged[a].e2e.add(e2e)
      merged[a].inPath.add(inPath)
    }
  }
  // One more mesh run under both processes' profilers, for the event-loop shares (not in the latency figures).
  const clientProfile = `${out}overhead-client.cpuprofile`
  const serverProfile = `${out}overhead-server.cpuprofile`
  await server.profile('start')
  await once('mesh', plan.profileMs, clientProfile)
  await server.profile('stop', serverProfile)
  return report(quick, plan, merged, { client: attribute(clientProfile), server: attribute(serverProfile) }, notHeld)
}

function report(quick: boolean, plan: Plan, m: Merged, elu: { client: Attribution; server: Attribution }, notHeld: string[]): ScenarioResult {
  const us1 = (v: number) => `${v.toFixed(1)} µs`
  const inPathRow = (a: Arm) => [ARMS[a], ...PCTS.map((p) => us1(m[a].inPath.getValueAtPercentile(p) / 1000)), us1(m[a].inPath.maxValue / 1000)]
  const e2eRow = (a: Arm) => {
    const runs = m[a].runs
    const gcMs = runs.reduce((n, r) => n + r.res.gc.totalMs, 0)
    const gc = `${Math.round((1000 * gcMs) / (runs.length * plan.runMs))} ms/s, longest ${Math.max(...runs.map((r) => r.res.gc.maxMs)).toFixed(1)} ms`
    return [ARMS[a], ...PCTS.map((p) => fmt.us(m[a].e2e.getValueAtPercentile(p))), fmt.us(m[a].e2e.maxValue), fmt.us(Math.max(...runs.map((r) => r.res.maxSendLagMicros))), gc, `${(100 * median(runs.map((r) => r.serverElu))).toFixed(1)} %`]
  }
  // Added in-path time per percentile: the median over runs of (mesh − raw), each pair back to back.
  const added = PCTS.map((_, k) => median(m.mesh.runs.map((r, i) => r.inPath[k]! - m.raw.runs[i]!.inPath[k]!)))
  const p99Diffs = m.mesh.runs.map((r, i) => r.inPath[2]! - m.raw.runs[i]!.inPath[2]!)
  const addedP99 = added[2]!
  const e2eP99Diffs = m.mesh.runs.map((r, i) => r.e2e[2]! - m.raw.runs[i]!.e2e[2]!)
  const pct = (v: number) => `${(100 * v).toFixed(2)} %`
  const eluRow = (label: string, a: Attribution) => [label, pct(1 - a.shares.idle), pct(a.shares.telemetry), pct(a.shares.policy), `**${pct(a.shares.telemetry + a.shares.policy)}**`, pct(a.shares['weft-other']), pct(a.shares.gc), pct(a.shares['not-weft'])]
  const topFiles = (a: Attribution) => a.files.slice(0, 6).map(([f, v]) => `${f} ${pct(v)}`).join(', ')
  const mp = (a: Attribution) => a.shares.telemetry + a.shares.policy
  const goals = [
    { text: `overhead: added in-path p99 at ${fmt.int(plan.rate)} req/s ≤ 1.1 × X = ${(1.1 * X_MICROS).toFixed(1)} µs (L8's X = ${X_MICROS} µs, set once; measured ${addedP99.toFixed(1)} µs)`, met: addedP99 <= 1.1 * X_MICROS },
    { text: `overhead: metrics and policy work ≤ ${ELU_SHARE_GOAL * 100} % of the event loop at ${fmt.int(plan.rate)} req/s (measured client ${pct(mp(elu.client))}, server ${pct(mp(elu.server))})`, met: mp(elu.client) <= ELU_SHARE_GOAL && mp(elu.server) <= ELU_SHARE_GOAL },
  ]
  const markdown = [
    `### overhead — latency in the request's path and the event loop's share of metrics and policy (RELIABILITY L8)`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`npx tsup && node --expose-gc --import tsx bench/overhead.ts\`.`,
    ``,
    `Server: node:http behind \`mesh.listen\` in a child process (bench/lib/meshed-upstream.ts): every default inbound layer, metrics on, and two AuthorizationPolicies it evaluates on every request (DENY \`/admin\`, \`/admin/*\`; ALLOW GET \`/api/*\`). ` +
      `Baseline: an undici \`Pool\` to it. Weft: \`createMesh\` with a Service of that server and a two-rule Route, every default layer on; both send GET \`${PATH}\` and check the body. ` +
      `Open loop at ${fmt.int(plan.rate)} req/s, ${plan.runs} run(s) of ${plan.runMs / 1000} s per arm (order reversed every run), each arm in a client process of its own, after a warm-up.`,
    ...(notHeld.length > 0 ? [``, `**This machine did not hold the planned rate**, so this run measured at ${fmt.int(plan.rate)} req/s (X was set at ${fmt.int(RATE)} req/s; compare with care): ${notHeld.join('; ')}.`] : []),
    ``,
    `**In the request's path**: each request's time from the caller's call until undici's core creates the request, plus from undici's core having the response headers until the caller has the body ` +
      `(undici's \`undici:request:create\` and \`undici:request:headers\` diagnostics channels, the same for both arms; bench/lib/in-path.ts). What lies between, the socket and the server, both arms share; it is left out, ` +
      `and with it most of what this VM's scheduling adds to an end-to-end p99 (the end-to-end table below, where a run's p99 moves by milliseconds). Weft's own work on the request and on the response is all inside these two windows.`,
    ``,
    table(['arm', ...PCTS.map((p) => `p${p}`), 'max'], [inPathRow('raw'), inPathRow('mesh')]),
    ``,
    `Added in the path, mesh − raw (median over the runs of each run pair's difference): ${PCTS.map((p, k) => `p${p} **${us1(added[k]!)}**`).join(', ')}. Per run, p99: ${p99Diffs.map((d) => d.toFixed(1)).join(', ')} µs.`,
    ``,
    `What the in-path figure does not hold: a stall of the client's event loop *between* requests — a GC pause that the mesh's allocations brought on, say, or the VM ` +
      `leaving the process off the CPU — delays every request waiting behind it, and shows only end to end. So it is a lower bound of the added latency, and a stable one: ` +
      `L8's regression line (X) is drawn on it. Issue 2's and issue 7's "≤ ${ADDED_P99_GOAL_MICROS} µs added p99" (report-only here): **${addedP99 <= ADDED_P99_GOAL_MICROS ? 'under' : 'over'} it in the path (${addedP99.toFixed(1)} µs)**; ` +
      `end to end, mesh − raw p99 per run: ${e2eP99Diffs.map((d) => fmt.int(d)).join(', ')} µs, with single stalls (max send lag, GC pauses below) as long as those differences, so not readable here; http-client.ts keeps that goal.`,
    ``,
    `**End to end** (from each request's scheduled send time, coordinated-omission corrected, as http-client.ts), for context; "max send lag" is the generator's worst lateness (a stalled loop), the last column the server's event-loop utilisation during the arm's runs:`,
    ``,
    table(['arm', ...PCTS.map((p) => `p${p}`), 'max', 'max send lag', 'client GC pauses', 'server ELU'], [e2eRow('raw'), e2eRow('mesh')]),
    ``,
    `**Event-loop shares** in one more ${plan.profileMs / 1000} s run of the mesh arm under both processes' V8 sampling profilers (250 µs; not part of the figures above), bench/lib/attribute.ts: ` +
      `each sample is charged to the innermost frame of Weft or a package (Node internals and builtins to the code that called them), Weft's frames to the src/ file they were bundled from; shares are of wall time. ` +
      `Telemetry: src/telemetry/, prom-client, the OpenTelemetry API. Policy: route matching (src/routing/, the compiled snapshot), authorization, identity, resilience (retries and budget, breaker, limits, fault, timeouts), cockatiel. ` +
      `GC cannot be charged to anyone and is shown apart. The profiler's own work falls under "not Weft".`,
    ``,
    table(['process', 'busy', 'telemetry', 'policy', 'metrics + policy', 'other Weft', 'GC', 'not Weft'], [eluRow('mesh client', elu.client), eluRow('meshed server', elu.server)]),
    ``,
    `Largest Weft files, client: ${topFiles(elu.client)}; server: ${topFiles(elu.server)}.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'overhead', markdown, goals }
}

scenario({ run, arm: makeArm }, 90_000)
