// Scenario: unary gRPC calls, raw grpc-js client vs the same client made by mesh.grpc.client (all default
// layers; and with a routed weighted split), against the same plain grpc-js upstream, same run.
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import type * as Weft from '../src/index.js'

// The mesh under test is the built package (dist/, what users run), not src/ through tsx, whose
// transform adds work of its own to every closure. `npm run bench` builds first.
const distEntry = '../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
import { forkArm, type ArmHost } from './lib/arm.js'
import { grpc, LedgerClient, startGrpcUpstream, UPSTREAM_NAME, type Ledger } from './lib/grpc-kit.js'
import { allocCells, ALLOC_NOTE } from './lib/alloc-meter.js'
import { median, type ClosedResult, type Send } from './lib/load.js'
import { flag, fmt, scenario, table, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'

const CONCURRENCY = 32
const GOAL = 0.9
const REQ = { id: 'bench' }
const METHOD = 'weft.bench.Ledger'
const silent = { info() {}, warn() {}, error() {} }
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  raw: 'raw grpc-js client (`new Ledger(addr, insecure)`)',
  'raw-md': 'raw grpc-js client sending what the mesh adds to each call (`traceparent`, `weft-caller`, a 15 s deadline)',
  mesh: 'Weft `mesh.grpc.client(Ledger, \'ledger\')`',
  'mesh-route': 'Weft, with a Route splitting `Get` 80/20 over 2 subsets',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

/** One unary Get; true when the answer is the upstream's echo of the request. */
function sender(client: Ledger): Send {
  return () => new Promise((resolve, reject) => {
    client.Get(REQ, (err, res) => (err ? reject(err) : resolve(res.id === REQ.id && res.from === UPSTREAM_NAME)))
  })
}

// The raw-md arm's traceparents: made up front, so the arm measures what grpc-js and Node's HTTP/2
// do with the metadata, not the making of ids.
const TRACEPARENTS = Array.from({ length: 256 }, () => `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`)

/**
 * One unary Get carrying the request metadata a mesh call carries (trace context, caller, the
 * service's 15 s timeout as the gRPC deadline), on a raw client: what those cost in grpc-js itself.
 */
function senderWithMeshMetadata(client: Ledger): Send {
  let n = 0
  return () => new Promise((resolve, reject) => {
    const md = new grpc.Metadata()
    md.set('traceparent', TRACEPARENTS[n++ & 255]!)
    md.set('weft-caller', 'bench')
    client.Get(REQ, md, { deadline: Date.now() + 15_000 }, (err, res) => (err ? reject(err) : resolve(res.id === REQ.id && res.from === UPSTREAM_NAME)))
  })
}

/** In the arm's own process: a raw grpc-js client on port 1, or a mesh client of the Service "ledger". */
async function makeArm(name: string): Promise<{ send: Send; close(): Promise<void> }> {
  const ports = flag('--ports')!.split(',')
  const addr = `127.0.0.1:${ports[0]}`
  if (name === 'raw' || name === 'raw-md') {
    const client = new LedgerClient(addr, grpc.credentials.createInsecure()) as unknown as Ledger
    return { send: name === 'raw' ? sender(client) : senderWithMeshMetadata(client), close: async () => client.close() }
  }
  if (name !== 'mesh' && name !== 'mesh-route') throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
  const routed = name === 'mesh-route'
  const endpoints = routed ? ports.slice(0, 2).map((port, i) => ({ address: `127.0.0.1:${port}`, labels: { version: `v${i + 1}` } })) : [{ address: addr }]
  const mesh = await createMesh({
    service: 'bench',
    logger: silent,
    config: [
      { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'ledger' }, spec: { protocol: 'grpc', endpoints } },
      ...(routed
        ? [{
            apiVersion: 'weft/v1',
            kind: 'Route',
            metadata: { name: 'ledger' },
            spec: {
              service: 'ledger',
              rules: [
                { name: 'other', matches: [{ grpc: { service: 'weft.bench.Other' } }], backends: [{ subset: { version: 'v1' } }] },
                { name: 'get', matches: [{ grpc: { service: METHOD, method: 'Get' } }], backends: [{ subset: { version: 'v1' }, weight: 80 }, { subset: { version: 'v2' }, weight: 20 }] },
              ],
            },
          }]
        : []),
    ],
  })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  const send = sender(client)
  // The calls must go through the mesh: one call, then the mesh's own client histogram must count it.
  if (!(await send())) throw new Error(`${name}: bad answer`)
  const counted = /^rpc_client_duration_seconds_count\{[^}]*rpc_method="Get"[^}]*\} (\d+)/m.exec(await mesh.metrics())
  if (!counted || Number(counted[1]) < 1) throw new Error(`${name}: the call was not counted in rpc_client_duration_seconds (not through the mesh?)`)
  return {
    send,
    close: async () => {
      client.close()
      await mesh.close()
    },
  }
}

type Round = ClosedResult & { serverCpuMicros: number }

/** The main process: one upstream, client processes per arm, A/B alternation over IPC. */
async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick
    ? { warmMs: 300, rounds: 2, runMs: 300, replicas: 1 }
    : // ~65 s on 2 cores: 4 arms × 3 processes warmed 1.5 s each, then 10 rounds of 1 s per arm.
      { warmMs: 1_500, rounds: 10, runMs: 1_000, replicas: 3 }
  const upstream = await startGrpcUpstream(2)
  const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
  // Several client processes per arm, taken in turn (as in http-client.ts): one process's luck
  // (JIT decisions, heap layout, which core it lands on) moves a single-process ratio by several %.
  const replicas = o.only ? 1 : plan.replicas
  const pool = {} as Record<Arm, ArmHost[]>
  try {
    await Promise.all(arms.map(async (a) => {
      pool[a] = await Promise.all(Array.from({ length: replicas }, () => forkArm(FILE, a, ['--ports', upstream.ports.join(',')])))
    }))
    const closed = async (a: Arm, ms: number, host: ArmHost, profile?: string): Promise<Round> => {
      const s0 = await upstream.cpuMicros()
      const r = check(await host.closed(ms, CONCURRENCY, profile), a)
      return { ...r, serverCpuMicros: (await upstream.cpuMicros()) - s0 }
    }
    for (const a of arms) for (const h of pool[a]) await closed(a, plan.warmMs, h)
    if (o.only) {
      const r = await closed(arms[0]!, o.quick ? 1_000 : ONLY_MS, pool[arms[0]!][0]!, o.profile)
      const markdown = `${ARMS[arms[0]!]}: ${fmt.int(r.requests / r.seconds)} calls/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU/call`
      return { title: `grpc-client --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      // A/B alternation: the order flips every round so drift (thermal, noisy neighbours) cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs, pool[a][round % replicas]!))
    }
    return report(o.quick, plan, rounds)
  } finally {
    for (const hs of Object.values(pool)) for (const h of hs) h.stop()
    upstream.stop()
  }
}

function check<T extends { errors: number; requests: number; firstError: unknown }>(r: T, arm: string): T {
  if (r.errors > 0) throw new Error(`${arm}: ${r.errors} of ${r.requests} calls failed; first: ${String(r.firstError)}`, { cause: r.firstError })
  return r
}

function report(quick: boolean, plan: { rounds: number; runMs: number; replicas: number }, closed: Record<Arm, Round[]>): ScenarioResult {
  const rps = (a: Arm) => median(closed[a].map((r) => r.requests / r.seconds))
  const cpu = (a: Arm) => median(closed[a].map((r) => r.cpuMicros / r.requests))
  const srv = (a: Arm) => median(closed[a].map((r) => r.serverCpuMicros / r.requests))
  // Mean time per call in a closed loop: CONCURRENCY calls in flight for the whole run (Little's law).
  const latency = (a: Arm) => (CONCURRENCY * 1e6) / rps(a)
  const row = (a: Arm) => {
    const rs = closed[a].map((r, i) => r.requests / r.seconds / (closed.raw[i]!.requests / closed.raw[i]!.seconds))
    const ratio = a === 'raw' ? '1.000×' : `**${fmt.ratio(rps(a) / rps('raw'))}** (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`
    const added = (v: number) => (a === 'raw' ? '—' : `**${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} µs**`)
    return [ARMS[a], fmt.int(rps(a)), ratio, cpu(a).toFixed(1), added(cpu(a) - cpu('raw')), fmt.us(latency(a)), added(latency(a) - latency('raw')), srv(a).toFixed(1), ...allocCells(closed[a])]
  }
  const ratio = rps('mesh') / rps('raw')
  const goals = [{ text: `grpc-client: mesh unary calls/s ≥ ${GOAL.toFixed(2)}× raw grpc-js (measured ${ratio.toFixed(3)}×)`, met: ratio >= GOAL }]
  const routed = rps('mesh-route') / rps('raw')
  const sign = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)}`
  const markdown = [
    `### grpc-client — raw grpc-js vs Weft, unary calls, same upstream, same run`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`npx tsup && node --expose-gc --import tsx bench/grpc-client.ts\`.`,
    ``,
    `Upstream: a plain grpc-js ${grpcVersion()} \`Server\` in a child process (no mesh), bound to 2 ports on 127.0.0.1, insecure; ` +
      `its unary \`${METHOD}/Get\` (bench/lib/bench.proto, loaded with @grpc/proto-loader) answers at once with \`{ id, from, amount }\`. ` +
      `Baseline: \`new Ledger('127.0.0.1:PORT1', credentials.createInsecure())\`, the client constructor from \`loadPackageDefinition\`. ` +
      `Weft: \`createMesh\` with a Service \`ledger\` (\`protocol: grpc\`, the one endpoint 127.0.0.1:PORT1) and \`mesh.grpc.client(Ledger, 'ledger')\`, ` +
      `every default layer on (telemetry/rpc metrics, trace metadata, deadline, fault, limit, circuit breaker, retries with budget and replay log, p2c-ewma, endpoint stats, attempt timeout); ` +
      `the same constructor and the same callback call \`client.Get({ id }, cb)\`. Report-only arm \`raw-md\`: the raw client, each call with a \`Metadata\` of a fresh \`traceparent\` (from 256 made up front) and \`weft-caller: bench\` and a deadline 15 s ahead (the service's default timeout), which is what a mesh call sends besides the request. Report-only arm \`mesh-route\`: the Service has both ports (labels v1/v2) and a Route whose second rule ` +
      `matches \`grpc: { service, method: Get }\` and splits 80/20 across the subsets (two connections instead of one). ` +
      `Every call checks the answer; any failed call fails the run. Each mesh process first checks that its call was counted in \`rpc_client_duration_seconds\`. ` +
      `Each arm runs in client processes of its own (own heap, JIT and GC; their CPU is their own), driven over IPC from the scenario's main process.`,
    ``,
    `**Closed loop**: ${CONCURRENCY} calls in flight, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a warm-up, arm order reversed every round, ` +
      `each arm's rounds spread over ${plan.replicas} client process(es) taken in turn; medians. ` +
      `CPU from \`process.cpuUsage()\` in the arm's process (client) and in the upstream's (server). No forced GC before a run (right after one, V8's young generation and heap pages start cold, which slowed the next second 2–4× here, the arm that allocates more the most); each process is warmed up first. ` +
      `Time per call is ${CONCURRENCY} ÷ calls/s (Little's law: the mean time a call is in flight, queueing for the CPU included). ${ALLOC_NOTE.replaceAll('request', 'call')}`,
    ``,
    table(['arm', 'calls/s (median)', 'ratio to raw', 'client CPU µs / call', 'added client CPU / call', 'time per call', 'added time / call', 'server CPU µs / call', 'client KB allocated / call', 'client page faults / 1k calls'],
      (Object.keys(ARMS) as Arm[]).map(row)),
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    `- Report only: raw grpc-js sending the mesh's metadata and deadline: ${(rps('raw-md') / rps('raw')).toFixed(3)}× raw, ${sign(cpu('raw-md') - cpu('raw'))} µs client CPU and ${sign(srv('raw-md') - srv('raw'))} µs server CPU per call — ` +
      `what grpc-js and Node's HTTP/2 spend on two metadata entries and a deadline. Weft against that arm: ${(rps('mesh') / rps('raw-md')).toFixed(3)}×, ${sign(cpu('mesh') - cpu('raw-md'))} µs client CPU and ${sign(srv('mesh') - srv('raw-md'))} µs server CPU per call (its own work: routing, the layers, the call objects). ` +
      `On 2 cores the client and the upstream share the CPU, so both sides' CPU per call sets calls/s.`,
    `- Report only: Weft with the routed 80/20 split, ${routed.toFixed(3)}× raw, ${(cpu('mesh-route') - cpu('mesh')) >= 0 ? '+' : '−'}${Math.abs(cpu('mesh-route') - cpu('mesh')).toFixed(1)} µs client CPU per call over Weft without a Route.`,
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'grpc-client', markdown, goals, profileArms: { base: 'raw', weft: 'mesh' } }
}

function grpcVersion(): string {
  return (createRequire(import.meta.url)('@grpc/grpc-js/package.json') as { version: string }).version
}

scenario({ run, arm: makeArm }, 170_000)
