// Scenario: raw undici Pool, a handmade client (undici + cockatiel + prom-client) and the mesh (all default layers + a routed weighted split) against the same node:http upstream.
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Pool, fetch as undiciFetch } from 'undici'
import type * as Weft from '../src/index.js'

// The mesh under test is the built package (dist/, what users run), not src/ through tsx, whose
// transform adds work of its own to every closure. `npm run bench` builds first.
const distEntry = '../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
import { forkArm, type ArmHost } from './lib/arm.js'
import { benchRoute } from './lib/bench-route.js'
import { handmadeClient } from './lib/handmade-client.js'
import { allocCells, ALLOC_NOTE } from './lib/alloc-meter.js'
import { median, newHistogram, startUpstream, type ClosedResult, type Histogram, type OpenResult, type Send } from './lib/load.js'
import { flag, fmt, scenario, table, type LatencyChart, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'

const CONCURRENCY = 32
const RATE = 2_000
const PATH = '/api/items?id=1'
// The raw-md arm's traceparents: made up front, so the arm measures what undici does with the
// headers, not the making of ids.
const TRACEPARENTS = Array.from({ length: 256 }, () => `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`)
const silent = { info() {}, warn() {}, error() {} }
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  raw: 'raw undici `Pool.request`',
  handmade: 'handmade: undici `Pool` + cockatiel + prom-client + traceparent',
  mesh: 'Weft `mesh.request`',
  'raw-fetch': 'raw undici `fetch` (Pool as dispatcher)',
  'mesh-fetch': 'Weft `mesh.fetch`',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS
/**
 * Arms not in the scenario's run (its time is budgeted), for A/B runs by hand with
 * bench/lib/ab-http-client.ts: what the mesh's request headers cost raw undici, and the mesh
 * without the routed split.
 */
const EXTRA_ARMS = {
  'raw-md': 'raw undici `Pool.request` sending what the mesh adds (`traceparent`, `weft-caller`, `weft-deadline-ms`, `host`)',
  'mesh-1': 'Weft `mesh.request`, one endpoint, no Route',
} as const satisfies Record<string, string>

/** In the arm's own process: the client for one arm (a raw Pool, or a mesh over the 4 listeners). */
async function makeArm(name: string): Promise<{ send: Send; close(): Promise<void> }> {
  const ports = flag('--ports')!.split(',')
  const origin = `http://127.0.0.1:${ports[0]}`
  if (name === 'raw' || name === 'raw-fetch') {
    const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 }) // the mesh's pool options
    const send: Send = name === 'raw'
      ? async () => {
        const r = await pool.request({ method: 'GET', path: PATH })
        return r.statusCode === 200 && (await r.body.text()) === 'ok'
      }
      : async () => {
        const r = await undiciFetch(origin + PATH, { dispatcher: pool })
        return r.status === 200 && (await r.text()) === 'ok'
      }
    return { send, close: () => pool.close() }
  }
  if (name === 'raw-md') {
    const pool = new Pool(origin, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })
    let n = 0
    const send: Send = async () => {
      const headers = { host: 'bench', 'weft-caller': 'bench', traceparent: TRACEPARENTS[n++ & 255]!, 'weft-deadline-ms': '15000' }
      const r = await pool.request({ method: 'GET', path: PATH, headers })
      return r.statusCode === 200 && (await r.body.text()) === 'ok'
    }
    return { send, close: () => pool.close() }
  }
  if (name === 'handmade') {
    const client = handmadeClient(origin, PATH, '/api/items')
    // One request first, to know the arm really observes each request in its histogram.
    if (!(await client.send()) || (await client.observed()) !== 1) throw new Error('handmade: the first request was not observed in its histogram')
    return client
  }
  // Calibration: a "request" that completes on the next turn of the event loop, to show the open-loop generator's own floor.
  if (name === 'noop') return { send: () => new Promise((resolve) => setImmediate(() => resolve(true))), close: async () => {} }
  if (name === 'mesh-1') {
    const mesh1 = await createMesh({ service: 'bench', logger: silent, config: [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'bench' }, spec: { endpoints: [{ address: `127.0.0.1:${ports[0]}` }] } }] })
    const send: Send = async () => {
      const r = await mesh1.request(`http://bench${PATH}`)
      return r.statusCode === 200 && (await r.body.text()) === 'ok'
    }
    return { send, close: () => mesh1.close() }
  }
  if (name !== 'mesh' && name !== 'mesh-fetch') throw new Error(`no arm "${name}" (have: ${[...Object.keys(ARMS), ...Object.keys(EXTRA_ARMS)].join(', ')})`)
  const mesh = await createMesh({
    service: 'bench',
    logger: silent,
    config: [
      {
        apiVersion: 'weft/v1',
        kind: 'Service',
        metadata: { name: 'bench' },
        spec: { endpoints: ports.map((port, i) => ({ address: `127.0.0.1:${port}`, labels: { version: i < 2 ? 'v1' : 'v2' } })) },
      },
      benchRoute([{ subset: { version: 'v1' } }], [{ subset: { version: 'v1' }, weight: 80 }, { subset: { version: 'v2' }, weight: 20 }]),
    ],
  })
  const send: Send = name === 'mesh'
    ? async () => {
      const r = await mesh.request(`http://bench${PATH}`)
      return r.statusCode === 200 && (await r.body.text()) === 'ok'
    }
    : async () => {
      const r = await mesh.fetch(`http://bench${PATH}`)
      return r.status === 200 && (await r.text()) === 'ok'
    }
  return { send, close: () => mesh.close() }
}

type Round = ClosedResult & { serverCpuMicros: number }

/** The main process: one upstream, one client process per arm, A/B alternation over IPC. */
async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick
    ? { warmMs: 300, rounds: 2, runMs: 300, replicas: 1, openRuns: 1, openMs: 500 }
    : // Sized for ~100 s on 2 cores with the handmade arm: 0.6 s warm-ups, 9 closed rounds (3 per
      // client process), 4 open-loop runs of 2 s per arm (before it: 2 s, 12 rounds, 6 × 3 s).
      { warmMs: 600, rounds: 9, runMs: 1_000, replicas: 3, openRuns: 4, openMs: 2_000 }
  const upstream = await startUpstream(4)
  const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
  // Several client processes per arm, taken in turn: one process's luck (JIT decisions, heap
  // layout, which core it lands on) moved a single-process ratio by 5-8 % here, more than the
  // effects being measured. The open loop uses each arm's first process.
  const replicas = o.only ? 1 : plan.replicas
  const pool = {} as Record<Arm | 'noop', ArmHost[]>
  const hosts = {} as Record<Arm | 'noop', ArmHost>
  try {
    await Promise.all([...arms, ...(o.only ? [] : ['noop' as const])].map(async (a) => {
      pool[a] = await Promise.all(Array.from({ length: a === 'noop' ? 1 : replicas }, () => forkArm(FILE, a, ['--ports', upstream.ports.join(',')])))
      hosts[a] = pool[a][0]!
    }))
    const closed = async (a: Arm, ms: number, profile?: string, host = hosts[a]): Promise<Round> => {
      const s0 = await upstream.cpuMicros()
      const r = check(await host.closed(ms, CONCURRENCY, profile), a)
      return { ...r, serverCpuMicros: (await upstream.cpuMicros()) - s0 }
    }
    for (const a of arms) for (const h of pool[a]) await closed(a, plan.warmMs, undefined, h)
    if (o.only) {
      const r = await closed(arms[0]!, o.quick ? 1_000 : ONLY_MS, o.profile)
      const markdown = `${{ ...ARMS, ...EXTRA_ARMS }[arms[0] as keyof typeof EXTRA_ARMS]}: ${fmt.int(r.requests / r.seconds)} req/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU/req`
      return { title: `http-client --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      // A/B alternation: the order flips every round so drift (thermal, noisy neighbours) cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs, undefined, pool[a][round % replicas]))
    }
    const open = Object.fromEntries(OPEN_ARMS.map((a): [OpenArm, OpenRuns] => [a, { merged: newHistogram(), runs: [] }])) as Record<OpenArm, OpenRuns>
    for (const a of OPEN_ARMS) await hosts[a].open(RATE, plan.warmMs / 2, newHistogram()) // warms the generator too
    const floor = await hosts.noop.open(RATE, plan.openMs, open.noop.merged)
    open.noop.runs.push({ pcts: PCTS.map((p) => open.noop.merged.getValueAtPercentile(p)), res: floor })
    for (let run = 0; run < plan.openRuns; run++) {
      // Each run is one A/B/C set, in an order reversed every run.
      for (const a of run % 2 ? (['mesh', 'handmade', 'raw'] as const) : (['raw', 'handmade', 'mesh'] as const)) {
        const h = newHistogram()
        const res = check(await hosts[a].open(RATE, plan.openMs, h), a)
        open[a].runs.push({ pcts: PCTS.map((p) => h.getValueAtPercentile(p)), res })
        open[a].merged.add(h)
      }
    }
    return report(o.quick, plan, rounds, open)
  } finally {
    for (const hs of Object.values(pool)) for (const h of hs) h.stop()
    upstream.stop()
  }
}

const OPEN_ARMS = ['noop', 'raw', 'handmade', 'mesh'] as const
type OpenArm = (typeof OPEN_ARMS)[number]
interface OpenRuns {
  merged: Histogram
  /** Per run: the PCTS percentiles (µs) and the generator's counters. */
  runs: { pcts: number[]; res: OpenResult }[]
}
const PCTS = [50, 90, 99, 99.9]

function check<T extends { errors: number; requests: number; firstError: unknown }>(r: T, arm: string): T {
  if (r.errors > 0) throw new Error(`${arm}: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}`, { cause: r.firstError })
  return r
}

function report(quick: boolean, plan: { rounds: number; runMs: number; replicas: number; openRuns: number; openMs: number }, closed: Record<Arm, Round[]>, open: Record<OpenArm, OpenRuns>): ScenarioResult {
  const rps = (a: Arm) => median(closed[a].map((r) => r.requests / r.seconds))
  const cpu = (a: Arm) => median(closed[a].map((r) => r.cpuMicros / r.requests))
  const srv = (a: Arm) => median(closed[a].map((r) => r.serverCpuMicros / r.requests))
  // Per-round throughput ratios: round i of both arms ran back to back.
  const roundRatios = (a: Arm, base: Arm) => closed[a].map((r, i) => r.requests / r.seconds / (closed[base][i]!.requests / closed[base][i]!.seconds))
  const range = (xs: number[]) => `rounds ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`
  const row = (a: Arm, base: Arm) => {
    const ratio = a === base ? '1.000×' : `**${fmt.ratio(rps(a) / rps(base))}** (${range(roundRatios(a, base))})`
    return [ARMS[a], fmt.int(rps(a)), ratio, (cpu(a) / 1000).toFixed(4), a === base ? '—' : `+${(cpu(a) - cpu(base)).toFixed(1)} µs`, (srv(a) / 1000).toFixed(4), ...allocCells(closed[a])]
  }
  const ratio = rps('mesh') / rps('raw')
  // Added latency per percentile: the median over the open-loop sets of (a − b), robust to a noisy set.
  const addedOver = (a: OpenArm, b: OpenArm) => PCTS.map((_, k) => median(open[a].runs.map((m, i) => m.pcts[k]! - open[b].runs[i]!.pcts[k]!)))
  const added = addedOver('mesh', 'raw')
  const addedP99 = added[2]!
  // The p99 goal can only be read when the runs agree to within a few times the goal: on a VM whose
  // stalls move each run's p99 by milliseconds, a median below 100 µs (or below zero) is noise.
  const p99Diffs = open.mesh.runs.map((m, i) => m.pcts[2]! - open.raw.runs[i]!.pcts[2]!)
  const p99Spread = [Math.min(...p99Diffs), Math.max(...p99Diffs)] as const
  const p99Readable = p99Diffs.length >= 2 && p99Spread[1] - p99Spread[0] <= 1_000
  const pct = (a: OpenArm, p: number) => open[a].merged.getValueAtPercentile(p)
  // Open-loop client CPU per request, µs: the median over runs (the first row's is the generator's own share).
  const ocpu = (a: OpenArm) => median(open[a].runs.map((x) => x.res.cpuMicros / x.res.requests))
  // Less the generator's own (its clock thread and its wait for each send time, which busy-turns
  // the event loop): that share is the same for every arm and would flatten the ratios. It is an
  // underestimate: a busy arm absorbs part of that wait into its own work.
  const onet = (a: OpenArm) => ocpu(a) - ocpu('noop')
  const orow = (a: OpenArm) => {
    const runs = open[a].runs
    const gcMs = runs.reduce((n, x) => n + x.res.gc.totalMs, 0)
    const gc = `${Math.round((1000 * gcMs) / (runs.length * plan.openMs))} ms/s, longest ${Math.max(...runs.map((x) => x.res.gc.maxMs)).toFixed(1)} ms`
    return [a === 'noop' ? `generator alone (no request), ${plan.openMs / 1000} s` : ARMS[a], ...PCTS.map((p) => fmt.us(pct(a, p))), fmt.us(open[a].merged.maxValue), String(Math.max(...runs.map((x) => x.res.maxInFlight))), fmt.us(Math.max(...runs.map((x) => x.res.maxSendLagMicros))), gc, (ocpu(a) / 1000).toFixed(4), a === 'noop' ? '—' : (onet(a) / 1000).toFixed(4)]
  }
  const ratioRow = (a: OpenArm, b: OpenArm, label: string) => [label, ...PCTS.map((p) => fmt.ratio(pct(a, p) / pct(b, p))), fmt.ratio(onet(a) / onet(b))]
  const chart: LatencyChart = {
    title: `HTTP client, open loop ${fmt.int(RATE)} req/s`,
    series: ([['raw', 'raw undici'], ['handmade', 'handmade (undici + cockatiel + prom-client)'], ['mesh', 'Weft']] as const).map(([a, label]) => ({ label, p50: pct(a, 50), p90: pct(a, 90), p99: pct(a, 99), p999: pct(a, 99.9) })),
  }
  const goals = [
    { text: `http-client: mesh.request throughput ≥ 0.90× raw (measured ${ratio.toFixed(3)}×)`, met: ratio >= 0.9 },
    { text: `http-client: added p99 at ${fmt.int(RATE)} req/s ≤ 100 µs (measured ${Math.round(addedP99)} µs${p99Readable ? '' : p99Diffs.length < 2 ? '; inconclusive: one run shows no spread' : `; inconclusive: the runs' differences span ${fmt.int(p99Spread[0])} to ${fmt.int(p99Spread[1])} µs, too wide to read a 100 µs goal from`})`, met: p99Readable && addedP99 <= 100 },
  ]
  const markdown = [
    `### http-client — raw undici vs Weft, same upstream, same run`,
    ``,
    `Upstream: node:http in a child process (4 listeners on 127.0.0.1, keep-alive, body \`ok\`). Baseline: one undici \`Pool\` on listener 1. ` +
      `Handmade (what a team writes without Weft; report-only): the same \`Pool\` on listener 1, each request through cockatiel 3's \`wrap(retry, circuitBreaker, timeout)\` ` +
      `(2 attempts at most with exponential backoff on 5xx, connection errors and attempt timeouts; a \`ConsecutiveBreaker(5)\` open for 10 s; a cooperative 5 s timeout per attempt), ` +
      `a prom-client 15 \`Histogram\` \`http_client_request_duration_seconds\` (labels method/status/route, a fixed route, Weft's 17 buckets) observed per request, ` +
      `and a fresh W3C \`traceparent\` header per request (bench/lib/handmade-client.ts). ` +
      `cockatiel is used as documented, with its defaults: no caller signal (each call then listens on one shared signal, so that cost grows with the requests in flight) ` +
      `and the timeout aborting each attempt's signal once it returns. ` +
      `Weft: \`createMesh\` with a Service of the 4 listeners (labels v1/v2), a Route whose second rule matches \`/api/\` and splits 80/20 across the subsets, ` +
      `and every default layer on (telemetry/metrics, trace header, deadline, fault, limit, retries with budget, circuit breaker, p2c-ewma, endpoint stats, attempt timeout, identity). ` +
      `Every request reads and checks the body; any failed request fails the run. ` +
      `Each arm runs in client processes of its own (own heap, JIT and GC; their CPU is their own), driven over IPC from the scenario's main process.`,
    ``,
    `**Closed loop**: ${CONCURRENCY} requests in flight, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a warm-up, arm order reversed every round, each arm's rounds spread over ${plan.replicas} client process(es) taken in turn; medians. ` +
      `CPU from \`process.cpuUsage()\` in the arm's process (client) and in the upstream's (server). No forced GC before a run (right after one, V8's young generation and heap pages start cold, which slowed the next second 2–4× here, the arm that allocates more the most); each process is warmed up first. ${ALLOC_NOTE}`,
    ``,
    table(['arm', 'req/s (median)', 'ratio to its raw baseline', 'client CPU s / 1k req', 'added client CPU / req', 'server CPU s / 1k req', 'client KB allocated / req', 'client page faults / 1k req'],
      [row('raw', 'raw'), row('handmade', 'raw'), row('mesh', 'raw'), row('raw-fetch', 'raw-fetch'), row('mesh-fetch', 'raw-fetch')]),
    ``,
    `Weft \`mesh.request\` ÷ handmade (report-only, no goal): throughput **${fmt.ratio(rps('mesh') / rps('handmade'))}** (${range(roundRatios('mesh', 'handmade'))}), ` +
      `client CPU per request ${fmt.ratio(cpu('mesh') / cpu('handmade'))}.`,
    ``,
    `**Open loop**: ${fmt.int(RATE)} req/s, ${plan.openRuns} run(s) of ${plan.openMs / 1000} s per arm (raw, handmade, Weft back to back, order reversed every run), latency from each request's *scheduled* send time ` +
      `(coordinated-omission corrected, wrk2-style), HdrHistogram; the table merges all runs of an arm. ` +
      `A worker thread sleeps until each send time (Node's timers tick in whole ms), so the generator has a floor of its own: the first row, ` +
      `where each "request" completes on the next event-loop turn; on a VM its wake-ups are late now and then, which all arms share. ` +
      `Client CPU: \`process.cpuUsage()\` of the arm's process (all its threads, the generator's clock thread included) from the first send to the last completion, per request, median over runs; ` +
      `the last column subtracts the generator's own (first row), which the ratios below use.`,
    ``,
    table(['arm', ...PCTS.map((p) => `p${p}`), 'max', 'max in flight', 'max send lag', 'GC pauses', 'client CPU s / 1k req', "less the generator's"], OPEN_ARMS.map(orow)),
    ``,
    `Ratios of the merged percentiles and of client CPU (report-only, no goal):`,
    ``,
    table(['arms', ...PCTS.map((p) => `p${p}`), "client CPU / req, less the generator's"],
      [ratioRow('handmade', 'raw', 'handmade ÷ raw'), ratioRow('mesh', 'raw', 'Weft ÷ raw'), ratioRow('mesh', 'handmade', 'Weft ÷ handmade')]),
    ``,
    `Added latency, mesh − raw (median over the ${plan.openRuns} run(s)): ${PCTS.map((p, k) => `p${p} **${fmt.us(added[k]!)}**`).join(', ')}. ` +
      `Per run, p99: ${open.mesh.runs.map((m, i) => Math.round(m.pcts[2]! - open.raw.runs[i]!.pcts[2]!)).join(', ')} µs. ` +
      `Mesh − handmade: ${addedOver('mesh', 'handmade').map((d, k) => `p${PCTS[k]} ${fmt.us(d)}`).join(', ')}.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'http-client', markdown, goals, profileArms: { base: 'raw', weft: 'mesh' }, chart }
}

scenario({ run, arm: makeArm }, 170_000)
