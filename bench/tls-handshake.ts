// Scenario: what a new mTLS connection costs — a full handshake vs a resumed session (raw node:tls
// and undici), and what a Weft client pays per new connection (its contexts issue no tickets and
// its connector offers no session, so every handshake is full) — against one node:https upstream.
import { fileURLToPath } from 'node:url'
import { connect } from 'node:tls'
import { Pool } from 'undici'
import { forkArm, type ArmHost } from './lib/arm.js'
import { median, type ClosedResult, type Send } from './lib/load.js'
import { PATH, check, controlledMesh, poolSend, rawTls, servicePolicy, startBench, tlsPool, type RawTls, type TlsStats } from './lib/mtls-kit.js'
import { flag, fmt, scenario, table, type ScenarioOptions, type ScenarioResult, ONLY_MS } from './lib/scenario.js'

const CONCURRENCY = 8
const FILE = fileURLToPath(import.meta.url)

const ARMS = {
  'tls-full': 'node:tls, full handshake (no session offered)',
  'tls-resumed': 'node:tls, resumed (last session offered)',
  'undici-full': 'undici Pool, new connection per request, full handshake (`maxCachedSessions: 0`, as the mesh)',
  'undici-resumed': 'undici Pool, new connection per request, resumed (undici\'s default session cache)',
  mesh: 'Weft `mesh.request`, new connection per request',
  keepalive: 'undici Pool, keep-alive mTLS (no handshake; the floor)',
  'plain-new': 'undici Pool, new plaintext TCP connection per request (context)',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

const REQUEST = Buffer.from(`GET ${PATH} HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n`)

/**
 * One connection with raw node:tls: connect and handshake (Weft's secure context and a SPIFFE
 * `checkServerIdentity`), one HTTP/1.1 request written by hand, read to the server's close. With
 * `resume`, each connection offers the last session the server sent (TLS 1.3 tickets).
 */
function tlsSend(tls: RawTls, port: number, resume: boolean): Send {
  let session: Buffer | undefined
  return () => new Promise<boolean>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...tls.connect, ...(resume && session ? { session } : {}) })
    const chunks: Buffer[] = []
    if (resume) s.on('session', (b: Buffer) => void (session = b))
    s.once('secureConnect', () => s.write(REQUEST))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => {
      s.end()
      const text = Buffer.concat(chunks).toString('latin1')
      resolve(text.startsWith('HTTP/1.1 200') && text.endsWith('\r\n\r\nok'))
    })
    s.on('error', reject)
  })
}

async function makeArm(name: string): Promise<{ send: Send; close(): Promise<void> }> {
  const dataDir = flag('--data-dir')!
  const [keepalive, close, plainClose] = flag('--ports')!.split(',').map(Number) as [number, number, number]
  const none = async () => {}
  switch (name) {
    case 'tls-full':
    case 'tls-resumed':
      return { send: tlsSend(await rawTls(dataDir), close, name === 'tls-resumed'), close: none }
    case 'undici-full':
    case 'undici-resumed':
    case 'keepalive': {
      const pool = tlsPool(await rawTls(dataDir), name === 'keepalive' ? keepalive : close, name === 'undici-resumed' ? 'cache' : 'none')
      return { send: poolSend(pool), close: () => pool.close() }
    }
    case 'plain-new': {
      const pool = new Pool(`http://127.0.0.1:${plainClose}`, { keepAliveTimeout: 10_000, connectTimeout: 5_000 })
      return { send: poolSend(pool), close: () => pool.close() }
    }
    case 'mesh': {
      const { mesh, send } = await controlledMesh(flag('--control')!, flag('--token')!)
      return { send, close: () => mesh.close() }
    }
    default:
      throw new Error(`no arm "${name}" (have: ${Object.keys(ARMS).join(', ')})`)
  }
}

type Round = ClosedResult & { serverCpuMicros: number; handshakes: number; resumed: number }

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick ? { warmMs: 200, rounds: 2, runMs: 250 } : { warmMs: 600, rounds: 5, runMs: 600 }
  const bench = await startBench()
  const hosts = {} as Record<Arm, ArmHost>
  try {
    await bench.applyPolicy(servicePolicy(bench.ports.close))
    const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
    const args = ['--data-dir', bench.dataDir, '--ports', `${bench.ports.keepalive},${bench.ports.close},${bench.ports.plainClose}`, '--control', bench.controlUrl, '--token', bench.joinToken]
    await Promise.all(arms.map(async (a) => (hosts[a] = await forkArm(FILE, a, args))))
    const closed = async (a: Arm, ms: number, profile?: string): Promise<Round> => {
      const s0: TlsStats = await bench.stats()
      const r = check(await hosts[a].closed(ms, CONCURRENCY, profile), a)
      const s1 = await bench.stats()
      if (s1.errors > s0.errors) throw new Error(`${a}: the upstream refused ${s1.errors - s0.errors} handshake(s): ${s1.firstError}`)
      return { ...r, serverCpuMicros: s1.cpuMicros - s0.cpuMicros, handshakes: s1.handshakes - s0.handshakes, resumed: s1.resumed - s0.resumed }
    }
    for (const a of arms) await closed(a, plan.warmMs)
    if (o.only) {
      const r = await closed(arms[0]!, o.quick ? 1_000 : ONLY_MS, o.profile)
      const markdown = `${ARMS[arms[0]!]}: ${fmt.int(r.requests / r.seconds)} connections/s, ${(r.cpuMicros / r.requests).toFixed(1)} µs client CPU per connection`
      return { title: `tls-handshake --only ${o.only}`, markdown, goals: [], requests: r.requests }
    }
    const rounds = Object.fromEntries(arms.map((a) => [a, [] as Round[]])) as Record<Arm, Round[]>
    for (let round = 0; round < plan.rounds; round++) {
      for (const a of round % 2 ? [...arms].reverse() : arms) rounds[a].push(await closed(a, plan.runMs))
    }
    return report(o.quick, plan, rounds)
  } finally {
    for (const h of Object.values(hosts)) h.stop()
    await bench.stop()
  }
}

function report(quick: boolean, plan: { rounds: number; runMs: number; warmMs: number }, rounds: Record<Arm, Round[]>): ScenarioResult {
  const rate = (a: Arm) => median(rounds[a].map((r) => r.requests / r.seconds))
  const cpu = (a: Arm) => median(rounds[a].map((r) => r.cpuMicros / r.requests))
  const srv = (a: Arm) => median(rounds[a].map((r) => r.serverCpuMicros / r.requests))
  const sum = (a: Arm, k: 'requests' | 'handshakes' | 'resumed') => rounds[a].reduce((n, r) => n + r[k], 0)
  const us = (v: number) => `${v.toFixed(0)} µs`
  const signed = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(0)} µs`
  const row = (a: Arm) => {
    const tls = a !== 'plain-new'
    const resumed = !tls ? '—' : a === 'keepalive' ? `${sum(a, 'handshakes')} handshakes in ${fmt.int(sum(a, 'requests'))} req` : `${((100 * sum(a, 'resumed')) / Math.max(1, sum(a, 'handshakes'))).toFixed(1)} % of ${fmt.int(sum(a, 'handshakes'))}`
    return [ARMS[a], fmt.int(rate(a)), us(cpu(a)), us(srv(a)), us(cpu(a) + srv(a)), resumed]
  }
  const meshRatio = rate('mesh') / rate('undici-full')
  const cpuRatio = cpu('mesh') / cpu('undici-full')
  const meshResumed = sum('mesh', 'resumed')
  const goals = [
    { text: `tls-handshake: Weft never resumes a TLS session (every handshake checks the peer's SVID; measured ${meshResumed} resumed of ${fmt.int(sum('mesh', 'handshakes'))})`, met: meshResumed === 0 && sum('mesh', 'handshakes') > 0 },
    // CPU, not the rate: at a few hundred connections a second the rate of two arms measured apart moves with the machine's other tenants.
    { text: `tls-handshake: mesh client CPU per request on a new mTLS connection ≤ 1.10× raw undici's with the same (full) handshake (measured ${cpuRatio.toFixed(3)}×)`, met: cpuRatio <= 1.1 },
  ]
  const saveClient = cpu('tls-full') - cpu('tls-resumed')
  const saveServer = srv('tls-full') - srv('tls-resumed')
  const markdown = [
    `### tls-handshake — a new mTLS connection: full handshake vs resumed session, and what Weft pays`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`npx tsup --silent && node --expose-gc --import tsx bench/tls-handshake.ts\`${quick ? ' (this run: --quick)' : ''}.`,
    ``,
    `The upstream and the certificates are mtls-client's (a daemon's CA; node:https with a payments SVID, client certificate required and verified), with node's default session tickets on, ` +
      `on a listener that answers every request with \`connection: close\`, so every request is a new TCP connection and a new TLS handshake (TLS 1.3, ECDSA P-256 certificates). ` +
      `Every client uses one secure context built as Weft builds its own (chain, key, bundle, SSL_OP_NO_TICKET — which on a client does not stop TLS 1.3 resumption: the resumed rows show it) ` +
      `and a SPIFFE \`checkServerIdentity\`. node:tls rows: \`tls.connect\`, the handshake, one HTTP/1.1 request written by hand, read to the server's close; "resumed" offers the last session ticket the server sent. ` +
      `undici rows: a Pool on the \`connection: close\` listener, with no session cache (what the mesh's connector sets) or undici's default one. ` +
      `Weft: the mesh under the daemon with Service payments \`{ address, mtls: true }\` on that listener: its connector makes every connection with a full handshake. ` +
      `Resumed: the upstream's count of handshakes that resumed a session (\`isSessionReused()\`). Each arm in its own client process; ${CONCURRENCY} connections in flight, ` +
      `${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a ${plan.warmMs / 1000} s warm-up, order reversed every round; medians. CPU: \`process.cpuUsage()\` of the client process and of the upstream, per request (= per connection, but for keep-alive).`,
    ``,
    table(['arm', 'req/s (median)', 'client CPU / req', 'server CPU / req', 'client + server', 'resumed (server side)'], (Object.keys(ARMS) as Arm[]).map(row)),
    ``,
    `- **Full vs resumed handshake (node:tls)**: a resumed session saves ${us(saveClient)} of client CPU (${((100 * saveClient) / cpu('tls-full')).toFixed(0)} %) and ${us(saveServer)} of server CPU (${((100 * saveServer) / srv('tls-full')).toFixed(0)} %) per connection ` +
      `(no certificate signature or chain verification on either side; the ECDHE key exchange remains); ${fmt.ratio(rate('tls-resumed') / rate('tls-full'))} the connections/s.`,
    `- **A new connection per request vs keep-alive (undici)**: full handshake ${signed(cpu('undici-full') - cpu('keepalive'))} client and ${signed(srv('undici-full') - srv('keepalive'))} server CPU per request; ` +
      `resumed ${signed(cpu('undici-resumed') - cpu('keepalive'))} and ${signed(srv('undici-resumed') - srv('keepalive'))}; a new plaintext TCP connection alone ${signed(cpu('plain-new') - cpu('keepalive'))} client CPU (against a TLS keep-alive request, so TLS record costs are netted out).`,
    `- **What Weft pays per new connection**: ${us(cpu('mesh'))} client CPU, ${signed(cpu('mesh') - cpu('undici-full'))} against raw undici with the same full handshake ` +
      `(${fmt.ratio(cpuRatio)} its CPU, ${fmt.ratio(meshRatio)} its rate); against a client that resumes, Weft's choice (no tickets, no session cache: every handshake verifies the peer's certificate and SVID again, ` +
      `so a session from before a root was retired cannot resume, and node skips \`checkServerIdentity\` on a resumed session) costs ${signed(cpu('mesh') - cpu('undici-resumed'))} client and ` +
      `${signed(srv('mesh') - srv('undici-resumed'))} server CPU per new connection. With keep-alive pools (mtls-client.ts) it is paid once per connection, not per request.`,
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'tls-handshake', markdown, goals, profileArms: { base: 'undici-full', weft: 'mesh' } }
}

scenario({ run, arm: makeArm }, 170_000)
