// Scenario: the server side: bare node:http, Express 5 and Fastify 5 vs the same apps served through the mesh, one closed-loop load generator.
import { request } from 'undici'
import { median } from './lib/load.js'
import { startApp, startLoadGen, type AppHost, type LoadGen, type LoadResult } from './lib/server-hosts.js'
import { fmt, scenario, table, type Goal, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'

const CONCURRENCY = 32
const PATH = '/users/42'
const BODY = '{"id":"42"}'
const ROUTE = '/users/:id'

const ARMS = {
  node: 'bare node:http',
  'node-weft': 'node:http through `mesh.listen`',
  express: 'bare Express 5',
  'express-weft': 'Express 5 + `app.use(weft(mesh))`',
  fastify: 'bare Fastify 5',
  'fastify-weft': 'Fastify 5 + `register(weftPlugin, { mesh })`',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS
const isWeft = (a: Arm) => a.endsWith('-weft')
/** Baseline and Weft arm of each pair, with its throughput goal (none: report only). */
const PAIRS: { base: Arm; weft: Arm; goal?: number }[] = [
  { base: 'node', weft: 'node-weft' },
  { base: 'express', weft: 'express-weft', goal: 0.95 },
  { base: 'fastify', weft: 'fastify-weft', goal: 0.9 },
]

/** One measured run: `served` = requests answered 200 (the rest were shed by the mesh). */
type Round = LoadResult & { served: number; serverCpuMicros: number; serverFaults: number }

/** One GET; its status, body and headers. */
async function get(origin: string, path: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const r = await request(origin + path)
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers }
}

/** Before measuring: each app answers the route, and only the Weft arms carry the mesh's weft-load header. */
async function probe(a: Arm, app: AppHost): Promise<void> {
  const r = await get(app.origin, PATH)
  if (r.status !== 200 || r.body !== BODY) throw new Error(`${a}: GET ${PATH} answered ${r.status} ${JSON.stringify(r.body)}, expected 200 ${BODY}`)
  if ((r.headers['weft-load'] !== undefined) !== isWeft(a)) throw new Error(`${a}: weft-load header ${isWeft(a) ? 'missing' : 'present'}; is the app (not) behind the mesh?`)
}

/** After measuring: the requests a Weft arm's server metrics counted under the route template (status 200). */
async function countedByRoute(app: AppHost): Promise<number> {
  const r = await get(app.origin, '/metrics')
  if (r.status !== 200) throw new Error(`GET /metrics answered ${r.status}`)
  const line = r.body.split('\n').find((l) => l.startsWith('http_server_request_duration_seconds_count{') && l.includes(`http_route="${ROUTE}"`) && l.includes('status_code="200"'))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}

function check(r: LoadResult, arm: string): LoadResult {
  if (r.errors > 0) throw new Error(`${arm}: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}`)
  return r
}

/** The main process: six server processes and one load generator; A/B alternation, medians. */
async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick ? { warmMs: 200, rounds: 2, runMs: 250 } : { warmMs: 2_000, rounds: 16, runMs: 900 }
  if (o.only && !(o.only in ARMS)) throw new Error(`no arm "${o.only}" (have: ${Object.keys(ARMS).join(', ')})`)
  const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
  const apps = {} as Record<Arm, AppHost>
  const started: AppHost[] = []
  let load: LoadGen | undefined
  try {
    const loading = startLoadGen()
    await Promise.all(arms.map(async (a) => started.push((apps[a] = await startApp(a)))))
    load = await loading
    for (const a of arms) await probe(a, apps[a])
    const sent = Object.fromEntries(arms.map((a) => [a, 1])) as Record<Arm, number> // requests served: the probe, then every run
    const measure = async (a: Arm, ms: number, profile?: string): Promise<Round> => {
      const f0 = await apps[a].pageFaults()
      const s0 = await apps[a].cpuMicros() // no forced GC: see closedLoop in lib/load.ts
      if (profile) await apps[a].profileStart()
      const r = check(await load!.closed(apps[a].origin, PATH, BODY, ms, CONCURRENCY), a)
      const serverCpuMicros = (await apps[a].cpuMicros()) - s0
      const serverFaults = (await apps[a].pageFaults()) - f0
      if (profile) await apps[a].profileStop(profile)
      sent[a] += r.requests - r.shed
      return { ...r, served: r.requests - r.shed, serverCpuMicros, serverFaults }
    }
    for (const a of arms) await measure(a, plan.warmMs)
    if (o.only) {
      const a = arms[0]!
      const r = await measure(a, o.quick ? 1_000 : ONLY_MS, o.profile)
      const markdown = `${ARMS[a]}: ${fmt.int(r.served / r.seconds)} req/s, ${(r.serverCpuMicros / r.served).toFixed(1)} µs server CPU/req${r.shed ? `, ${fmt.int(r.shed)} shed` : ''}`
      return { title: `http-server --only ${a}`, markdown, goals: [], requests: r.served }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      // A/B alternation: the order flips every round so drift (thermal, noisy neighbours) cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await measure(a, plan.runMs))
    }
    const counted = {} as Record<Arm, number>
    for (const a of arms.filter(isWeft)) counted[a] = await countedByRoute(apps[a])
    const heap = {} as Record<Arm, number>
    for (const a of arms) heap[a] = await apps[a].heapBytes()
    return report(o.quick, plan, rounds, sent, counted, heap)
  } finally {
    load?.stop()
    for (const app of started) app.stop()
  }
}

function report(quick: boolean, plan: { rounds: number; runMs: number }, rounds: Record<Arm, Round[]>, sent: Record<Arm, number>, counted: Record<Arm, number>, heap: Record<Arm, number>): ScenarioResult {
  const rps = (a: Arm) => median(rounds[a].map((r) => r.served / r.seconds))
  const srv = (a: Arm) => median(rounds[a].map((r) => r.serverCpuMicros / r.served))
  const busy = (a: Arm) => median(rounds[a].map((r) => r.serverCpuMicros / (r.seconds * 1e6)))
  const cli = (a: Arm) => median(rounds[a].map((r) => r.cpuMicros / r.requests))
  const faults = (a: Arm) => median(rounds[a].map((r) => r.serverFaults / r.served))
  const ratio = (p: (typeof PAIRS)[number]) => rps(p.weft) / rps(p.base)
  const row = (a: Arm, base: Arm) => {
    const rs = rounds[a].map((r, i) => r.served / r.seconds / (rounds[base][i]!.served / rounds[base][i]!.seconds))
    return [
      ARMS[a],
      fmt.int(rps(a)),
      a === base ? '1.000×' : `**${fmt.ratio(rps(a) / rps(base))}** (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`,
      srv(a).toFixed(1),
      a === base ? '—' : `**+${(srv(a) - srv(base)).toFixed(1)} µs**`,
      `${Math.round(100 * busy(a))} %`,
      faults(a).toFixed(2),
      `${(heap[a] / 1e6).toFixed(1)} MB`,
      cli(a).toFixed(1),
    ]
  }
  const goals: Goal[] = PAIRS.filter((p) => p.goal !== undefined).map((p) => ({
    text: `http-server: ${ARMS[p.weft]} throughput ≥ ${p.goal!.toFixed(2)}× ${ARMS[p.base]} (measured ${ratio(p).toFixed(3)}×)`,
    met: ratio(p) >= p.goal!,
  }))
  // When a goal is missed, run.ts profiles that pair's servers (Fastify's first): where the added server time goes.
  const missed = [...PAIRS].reverse().find((p) => p.goal !== undefined && ratio(p) < p.goal)
  const profiled = missed ?? PAIRS[2]!
  const metricsNote = PAIRS.map((p) => {
    const ok = counted[p.weft] === sent[p.weft]
    return `${ARMS[p.weft]} ${fmt.int(counted[p.weft]!)} of ${fmt.int(sent[p.weft])}${ok ? '' : ' (**mismatch**)'}`
  }).join('; ')
  const shed = PAIRS.map((p) => {
    const rs = rounds[p.weft]
    const n = rs.reduce((k, r) => k + r.shed, 0)
    return `${ARMS[p.weft]} ${fmt.int(n)} of ${fmt.int(rs.reduce((k, r) => k + r.requests, 0))} (in ${rs.filter((r) => r.shed > 0).length} of ${rs.length} rounds)`
  }).join('; ')
  const markdown = [
    `### http-server — bare node:http, Express 5 and Fastify 5 vs the same apps behind Weft, same load, same run`,
    ``,
    `Each app has one route, \`GET /users/:id\`, answering \`${BODY}\` for \`${PATH}\`; each runs in a server process of its own on 127.0.0.1 (keep-alive), so its CPU is its own. ` +
      `Weft arms: \`createMesh({ service })\` with default inbound options (shedding on with its defaults, server metrics on, health paths on the app's server), ` +
      `in front of the app by \`mesh.listen(server, { port, host, route })\` (route: the app's own match → \`${ROUTE}\`), \`app.use(weft(mesh))\` or \`fastify.register(weftPlugin, { mesh })\`. ` +
      `One load generator process drives every arm: an undici \`Pool\` per server, ${CONCURRENCY} requests in flight (closed loop); every request checks status and body, and any failure fails the run, except the mesh's own shedding (503 \`WEFT_ERR_SERVER_OVERLOADED\`), counted apart. ` +
      `Before measuring, each app is checked to answer the route and to carry the mesh's \`weft-load\` header exactly when behind Weft.`,
    ``,
    `**Closed loop**: ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a warm-up, arm order reversed every round (so each pair runs back to back, its order flipping); medians. ` +
      `Server CPU from \`process.cpuUsage()\` in the server's process across each run (no forced GC before a run: it slowed the next second 2–4× here); load-generator CPU likewise in its process. ` +
      `On 2 cores the load generator and the server each get about one core, so throughput is capped by whichever is busier; **server CPU per request** is the truer cost.`,
    ``,
    table(['arm', 'req/s (median)', 'ratio to its bare baseline', 'server CPU µs / req', 'added server CPU / req', 'server CPU use (1 core = 100 %)', 'server minor page faults / req', 'server heap after GC', 'load-gen CPU µs / req'],
      PAIRS.flatMap((p) => [row(p.base, p.base), row(p.weft, p.base)])),
    ``,
    `Page faults and heap: a minor page fault is a first touch of a fresh page (cost: the run's first line, "first touch of 64 MiB"); Express keeps ~12 KB of each request alive through a scavenge, so its GCs and fresh pages grow with whatever else is on its heap. Importing Weft adds ~8 MB (undici's index alone 5.2 MB), and on this VM 7 MB of plain objects on a bare Express cost it as much as the package did (bench/probe/express-floor.ts, bench/FIXES.md 2026-12-08).`,
    ``,
    `Requests shed by the mesh in the rounds (event loop blocked past the default 200 ms, e.g. the server's process left off the CPU by other tenants; not counted in req/s or CPU per request): ${shed}.`,
    ``,
    `Weft's server metrics counted under \`http_route="${ROUTE}"\`, status 200, vs requests served 200 by that server (probe, warm-up and rounds): ${metricsNote}.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    `- Report only: ${ARMS.node} vs ${ARMS['node-weft']}: ${ratio(PAIRS[0]!).toFixed(3)}×, +${(srv('node-weft') - srv('node')).toFixed(1)} µs server CPU per request.`,
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'http-server', markdown, goals, profileArms: { base: profiled.base, weft: profiled.weft } }
}

scenario({
  run,
  // The load generator is lib/load-gen.ts, driven over IPC by run(); this scenario has no client arms.
  arm: (name) => Promise.reject(new Error(`http-server has no client arm "${name}"; use --only ${Object.keys(ARMS).join('|')}`)),
}, 170_000)
