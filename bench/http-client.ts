// Scenario: raw undici Pool vs the mesh (all default layers + a routed weighted split) against the same node:http upstream.
import { fileURLToPath } from 'node:url'
import { Pool, fetch as undiciFetch } from 'undici'
import type * as Weft from '../src/index.js'

// The mesh under test is the built package (dist/, what users run), not src/ through tsx, whose
// transform adds work of its own to every closure. `npm run bench` builds first.
const distEntry = '../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
import { forkArm, type ArmHost } from './lib/arm.js'
import { median, newHistogram, startUpstream, type ClosedResult, type Histogram, type OpenResult, type Send } from './lib/load.js'
import { flag, fmt, scenario, table, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

const CONCURRENCY = 32
const RATE = 2_000
const PATH = '/api/items?id=1'
const silent = { info() {}, warn() {}, error() {} }
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  raw: 'raw undici `Pool.request`',
  mesh: 'Weft `mesh.request`',
  'raw-fetch': 'raw undici `fetch` (Pool as dispatcher)',
  'mesh-fetch': 'Weft `mesh.fetch`',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

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
  // Calibration: a "request" that completes on the next turn of the event loop, to show the open-loop generator's own floor.
  if (name === 'noop') return { send: () => new Promise((resolve) => setImmediate(() => resolve(true))), close: async () => {} }
  if (name !== 'mesh' && name !== 'mesh-fetch') throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
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
      {
        apiVersion: 'weft/v1',
        kind: 'Route',
        metadata: { name: 'bench' },
        spec: {
          service: 'bench',
          rules: [
            { name: 'admin', matches: [{ path: { prefix: '/admin/' }, methods: ['POST'] }], backends: [{ subset: { version: 'v1' } }] },
            { name: 'api', matches: [{ path: { prefix: '/api/' } }], backends: [{ subset: { version: 'v1' }, weight: 80 }, { subset: { version: 'v2' }, weight: 20 }] },
          ],
        },
      },
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
    ? { warmMs: 300, rounds: 2, runMs: 300, replicas: 1, openPairs: 1, openMs: 1_000 }
    : { warmMs: 2_000, rounds: 12, runMs: 1_000, replicas: 3, openPairs: 6, openMs: 3_000 }
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
      const r = await closed(arms[0]!, o.quick ? 1_000 : 10_000, o.profile)
      const markdown = `${ARMS[arms[0]!]}: ${fmt.int(r.requests / r.seconds)} req/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU/req`
      return { title: `http-client --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      // A/B alternation: the order flips every round so drift (thermal, noisy neighbours) cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs, undefined, pool[a][round % replicas]))
    }
    const open: Record<OpenArm, OpenRuns> = { noop: { merged: newHistogram(), runs: [] }, raw: { merged: newHistogram(), runs: [] }, mesh: { merged: newHistogram(), runs: [] } }
    for (const a of ['noop', 'raw', 'mesh'] as const) await hosts[a].open(RATE, plan.warmMs / 2, newHistogram()) // warms the generator too
    const floor = await hosts.noop.open(RATE, plan.openMs, open.noop.merged)
    open.noop.runs.push({ pcts: PCTS.map((p) => open.noop.merged.getValueAtPercentile(p)), res: floor })
    for (let pair = 0; pair < plan.openPairs; pair++) {
      for (const a of pair % 2 ? (['mesh', 'raw'] as const) : (['raw', 'mesh'] as const)) {
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

type OpenArm = 'noop' | 'raw' | 'mesh'
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

function report(quick: boolean, plan: { rounds: number; runMs: number; replicas: number; openPairs: number; openMs: number }, closed: Record<Arm, Round[]>, open: Record<OpenArm, OpenRuns>): ScenarioResult {
  const rps = (a: Arm) => median(closed[a].map((r) => r.requests / r.seconds))
  const cpu = (a: Arm) => median(closed[a].map((r) => r.cpuMicros / r.requests))
  const srv = (a: Arm) => median(closed[a].map((r) => r.serverCpuMicros / r.requests))
  const row = (a: Arm, base: Arm) => {
    const rs = closed[a].map((r, i) => r.requests / r.seconds / (closed[base][i]!.requests / closed[base][i]!.seconds))
    const ratio = a === base ? '1.000×' : `**${fmt.ratio(rps(a) / rps(base))}** (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`
    return [ARMS[a], fmt.int(rps(a)), ratio, (cpu(a) / 1000).toFixed(4), a === base ? '—' : `+${(cpu(a) - cpu(base)).toFixed(1)} µs`, (srv(a) / 1000).toFixed(4)]
  }
  const ratio = rps('mesh') / rps('raw')
  // Added latency per percentile: the median over A/B pairs of (mesh − raw), robust to a noisy pair.
  const added = PCTS.map((_, k) => median(open.mesh.runs.map((m, i) => m.pcts[k]! - open.raw.runs[i]!.pcts[k]!)))
  const addedP99 = added[2]!
  const orow = (a: OpenArm) => {
    const h = open[a].merged
    const runs = open[a].runs
    const gcMs = runs.reduce((n, x) => n + x.res.gc.totalMs, 0)
    const gc = `${Math.round((1000 * gcMs) / (runs.length * plan.openMs))} ms/s, longest ${Math.max(...runs.map((x) => x.res.gc.maxMs)).toFixed(1)} ms`
    return [a === 'noop' ? `generator alone (no request), ${plan.openMs / 1000} s` : ARMS[a], ...PCTS.map((p) => fmt.us(h.getValueAtPercentile(p))), fmt.us(h.maxValue), String(Math.max(...runs.map((x) => x.res.maxInFlight))), fmt.us(Math.max(...runs.map((x) => x.res.maxSendLagMicros))), gc]
  }
  const goals = [
    { text: `http-client: mesh.request throughput ≥ 0.90× raw (measured ${ratio.toFixed(3)}×)`, met: ratio >= 0.9 },
    { text: `http-client: added p99 at ${fmt.int(RATE)} req/s ≤ 100 µs (measured ${Math.round(addedP99)} µs)`, met: addedP99 <= 100 },
  ]
  const markdown = [
    `### http-client — raw undici vs Weft, same upstream, same run`,
    ``,
    `Upstream: node:http in a child process (4 listeners on 127.0.0.1, keep-alive, body \`ok\`). Baseline: one undici \`Pool\` on listener 1. ` +
      `Weft: \`createMesh\` with a Service of the 4 listeners (labels v1/v2), a Route whose second rule matches \`/api/\` and splits 80/20 across the subsets, ` +
      `and every default layer on (telemetry/metrics, trace header, deadline, fault, limit, retries with budget, circuit breaker, p2c-ewma, endpoint stats, attempt timeout, identity). ` +
      `Every request reads and checks the body; any failed request fails the run. ` +
      `Each arm runs in client processes of its own (own heap, JIT and GC; their CPU is their own), driven over IPC from the scenario's main process.`,
    ``,
    `**Closed loop**: ${CONCURRENCY} requests in flight, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a warm-up, arm order reversed every round, each arm's rounds spread over ${plan.replicas} client process(es) taken in turn; medians. ` +
      `CPU from \`process.cpuUsage()\` in the arm's process (client) and in the upstream's (server). No forced GC before a run (right after one, V8's young generation and heap pages start cold, which slowed the next second 2–4× here, the arm that allocates more the most); each process is warmed up first.`,
    ``,
    table(['arm', 'req/s (median)', 'ratio to its raw baseline', 'client CPU s / 1k req', 'added client CPU / req', 'server CPU s / 1k req'],
      [row('raw', 'raw'), row('mesh', 'raw'), row('raw-fetch', 'raw-fetch'), row('mesh-fetch', 'raw-fetch')]),
    ``,
    `**Open loop**: ${fmt.int(RATE)} req/s, ${plan.openPairs} A/B pair(s) of ${plan.openMs / 1000} s per arm (order alternating), latency from each request's *scheduled* send time ` +
      `(coordinated-omission corrected, wrk2-style), HdrHistogram; the table merges all runs of an arm. ` +
      `A worker thread sleeps until each send time (Node's timers tick in whole ms), so the generator has a floor of its own: the first row, ` +
      `where each "request" completes on the next event-loop turn; on a VM its wake-ups are late now and then, which both arms share.`,
    ``,
    table(['arm', ...PCTS.map((p) => `p${p}`), 'max', 'max in flight', 'max send lag', 'GC pauses'], [orow('noop'), orow('raw'), orow('mesh')]),
    ``,
    `Added latency, mesh − raw (median over the ${plan.openPairs} pair(s)): ${PCTS.map((p, k) => `p${p} **${fmt.us(added[k]!)}**`).join(', ')}. ` +
      `Per pair, p99: ${open.mesh.runs.map((m, i) => Math.round(m.pcts[2]! - open.raw.runs[i]!.pcts[2]!)).join(', ')} µs.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'http-client', markdown, goals, profileArms: { base: 'raw', weft: 'mesh' } }
}

scenario({ run, arm: makeArm }, 170_000)
