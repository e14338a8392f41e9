// Scenario: the mesh calling over mTLS (SVIDs from the daemon's CA) vs a raw undici Pool with the
// same client SVID and TLS settings, against the same node:https upstream; plaintext for context.
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { forkArm, type ArmHost } from './lib/arm.js'
import { allocCells, ALLOC_NOTE } from './lib/alloc-meter.js'
import { median, type ClosedResult, type Send } from './lib/load.js'
import { check, controlledMesh, poolSend, rawTls, servicePolicy, startBench, tlsPool, type TlsStats } from './lib/mtls-kit.js'
import { flag, fmt, scenario, table, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'

const CONCURRENCY = 32
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  raw: 'raw undici `Pool.request`, mTLS',
  mesh: 'Weft `mesh.request`, mTLS',
  plain: 'raw undici `Pool.request`, plaintext (context)',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

/** In the arm's own process: its client. */
async function makeArm(name: string): Promise<{ send: Send; close(): Promise<void> }> {
  const dataDir = flag('--data-dir')!
  const [tlsPort, plainPort] = flag('--ports')!.split(',').map(Number) as [number, number]
  if (name === 'raw') {
    const pool = tlsPool(await rawTls(dataDir), tlsPort)
    return { send: poolSend(pool), close: () => pool.close() }
  }
  if (name === 'plain') {
    const pool = new Pool(`http://127.0.0.1:${plainPort}`, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })
    return { send: poolSend(pool), close: () => pool.close() }
  }
  if (name !== 'mesh') throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
  const { mesh, send } = await controlledMesh(flag('--control')!, flag('--token')!)
  return { send, close: () => mesh.close() }
}

type Round = ClosedResult & { serverCpuMicros: number; handshakes: number }

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick
    ? { warmMs: 300, rounds: 2, runMs: 300, replicas: 1 }
    : { warmMs: 1_000, rounds: 8, runMs: 1_000, replicas: 2 }
  const bench = await startBench()
  const pool = {} as Record<Arm, ArmHost[]>
  try {
    await bench.applyPolicy(servicePolicy(bench.ports.keepalive))
    const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
    // Two client processes per arm, taken in turn (one process's luck moved single-process ratios
    // by 5–8 % in http-client.ts).
    const replicas = o.only ? 1 : plan.replicas
    const args = ['--data-dir', bench.dataDir, '--ports', `${bench.ports.keepalive},${bench.ports.plain}`, '--control', bench.controlUrl, '--token', bench.joinToken]
    for (const a of arms) pool[a] = await Promise.all(Array.from({ length: replicas }, () => forkArm(FILE, a, args)))
    const closed = async (a: Arm, ms: number, host: ArmHost, profile?: string): Promise<Round> => {
      const s0: TlsStats = await bench.stats()
      const r = check(await host.closed(ms, CONCURRENCY, profile), a)
      const s1 = await bench.stats()
      if (s1.errors > s0.errors) throw new Error(`${a}: the upstream refused ${s1.errors - s0.errors} handshake(s): ${s1.firstError}`)
      return { ...r, serverCpuMicros: s1.cpuMicros - s0.cpuMicros, handshakes: s1.handshakes - s0.handshakes }
    }
    for (const a of arms) for (const h of pool[a]) await closed(a, plan.warmMs, h)
    if (o.only) {
      const r = await closed(arms[0]!, o.quick ? 1_000 : ONLY_MS, pool[arms[0]!][0]!, o.profile)
      const markdown = `${ARMS[arms[0]!]}: ${fmt.int(r.requests / r.seconds)} req/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU/req`
      return { title: `mtls-client --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      // A/B alternation: the order flips every round so drift cancels out.
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs, pool[a][round % replicas]!))
    }
    return report(o.quick, plan, rounds)
  } finally {
    for (const hs of Object.values(pool)) for (const h of hs) h.stop()
    await bench.stop()
  }
}

function report(quick: boolean, plan: { rounds: number; runMs: number; replicas: number; warmMs: number }, closed: Record<Arm, Round[]>): ScenarioResult {
  const rps = (a: Arm) => median(closed[a].map((r) => r.requests / r.seconds))
  const cpu = (a: Arm) => median(closed[a].map((r) => r.cpuMicros / r.requests))
  const srv = (a: Arm) => median(closed[a].map((r) => r.serverCpuMicros / r.requests))
  const handshakes = (a: Arm) => closed[a].reduce((n, r) => n + r.handshakes, 0)
  const requests = (a: Arm) => closed[a].reduce((n, r) => n + r.requests, 0)
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)} µs`
  const perRound = (a: Arm, base: Arm) => closed[a].map((r, i) => r.requests / r.seconds / (closed[base][i]!.requests / closed[base][i]!.seconds))
  const row = (a: Arm) => {
    const rs = perRound(a, 'raw')
    const ratio = a === 'raw' ? '1.000×' : `${a === 'mesh' ? '**' : ''}${fmt.ratio(rps(a) / rps('raw'))}${a === 'mesh' ? '**' : ''} (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`
    const added = a === 'raw' ? '—' : signed(cpu(a) - cpu('raw'))
    return [ARMS[a], fmt.int(rps(a)), ratio, (cpu(a) / 1000).toFixed(4), added, (srv(a) / 1000).toFixed(4), a === 'plain' ? '—' : `${handshakes(a)} in ${fmt.int(requests(a))} req`, ...allocCells(closed[a])]
  }
  const ratio = rps('mesh') / rps('raw')
  const meshHandshakes = handshakes('mesh')
  const perTenK = (meshHandshakes * 10_000) / Math.max(1, requests('mesh'))
  const goals = [
    { text: `mtls-client: mesh.request over mTLS throughput ≥ 0.90× raw undici with the same TLS (measured ${ratio.toFixed(3)}×)`, met: ratio >= 0.9 },
    { text: `mtls-client: keep-alive mTLS, ≤ 1 full handshake per 10k mesh requests (measured ${meshHandshakes} in ${fmt.int(requests('mesh'))} requests)`, met: perTenK <= 1 },
  ]
  const markdown = [
    `### mtls-client — raw undici vs Weft over mTLS, same upstream, same run`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`npx tsup --silent && node --expose-gc --import tsx bench/mtls-client.ts\`${quick ? ' (this run: --quick)' : ''}.`,
    ``,
    `A control daemon (its own process, a fresh CA) signs every certificate. Upstream: a plain node:https server in a child process (not meshed), with an X509-SVID for ` +
      `\`spiffe://weft.local/ns/default/sa/payments\` from that CA, \`requestCert\` and \`rejectUnauthorized\` (the client certificate must chain to the bundle), keep-alive, body \`ok\`. ` +
      `Baseline: one undici \`Pool\` with a client SVID for \`checkout\` from the same CA and Weft's TLS settings (one secure context: chain, key, the bundle as \`ca\`, TLS ≥ 1.2, no tickets; ` +
      `\`checkServerIdentity\` that accepts the server's URI SAN — the hostname check does not apply to SPIFFE certificates; no session cache), the mesh's pool options. ` +
      `Weft: \`createMesh({ service: 'checkout', control, token })\` under the daemon (every default layer on), its SVID from the daemon, and a Service \`payments\` ` +
      `(pushed by the daemon) with one static endpoint \`{ address, mtls: true }\`, so it calls it over mTLS and checks the server's SPIFFE ID is payments'. ` +
      `Plaintext: a raw Pool to an http listener of the same upstream process, to show what TLS itself costs. Every request reads and checks the body; any failure fails the run. ` +
      `Each arm runs in client processes of its own, driven over IPC.`,
    ``,
    `**Closed loop**: ${CONCURRENCY} requests in flight, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a ${plan.warmMs / 1000} s warm-up per process, arm order reversed every round, ` +
      `each arm's rounds spread over ${plan.replicas} client process(es) taken in turn; medians. CPU from \`process.cpuUsage()\` in the arm's process (client) and the upstream's (server). ` +
      `Handshakes: TLS connections the upstream completed during the measured rounds (keep-alive: the pools were filled during warm-up). ${ALLOC_NOTE}`,
    ``,
    table(['arm', 'req/s (median)', 'ratio to raw mTLS', 'client CPU s / 1k req', 'client CPU / req vs raw mTLS', 'server CPU s / 1k req', 'TLS handshakes', 'client KB allocated / req', 'client page faults / 1k req'], (['raw', 'mesh', 'plain'] as const).map(row)),
    ``,
    `TLS itself: raw mTLS is ${fmt.ratio(rps('raw') / rps('plain'))} raw plaintext throughput, at ${signed(cpu('raw') - cpu('plain'))} client CPU and ${signed(srv('raw') - srv('plain'))} server CPU per request; ` +
      `Weft over mTLS is ${fmt.ratio(rps('mesh') / rps('plain'))} raw plaintext.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'mtls-client', markdown, goals, profileArms: { base: 'raw', weft: 'mesh' } }
}

scenario({ run, arm: makeArm }, 170_000)
