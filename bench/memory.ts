// Scenario: RSS of a service with and without the mesh — the same node:http app (one route that
// calls an upstream) bare and through Weft, same load, memory after a forced GC at idle and under load.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { request } from 'undici'
import { forkJs, median, nextMessage, startUpstream, type Upstream } from './lib/load.js'
import { startLoadGen, type LoadGen, type LoadResult } from './lib/server-hosts.js'
import { fmt, scenario, table, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

const GOAL_MB = 10
const CONCURRENCY = 32
const PATH = '/work'
const BODY = 'ok' // the upstream's answer, passed through
const IDLE_SAMPLES = 3

const ARMS = {
  bare: 'bare: node:http + undici `Pool`',
  weft: 'Weft: `mesh.listen` + `mesh.request`',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

interface Server {
  origin: string
  /** process.memoryUsage() in the server's process after full GCs. */
  mem(): Promise<NodeJS.MemoryUsage>
  stop(): void
}

/**
 * lib/memory-server.ts as plain JavaScript (types stripped) in bench/.out/, at the same depth as
 * lib/ so its relative import of dist/ holds: the servers run without tsx, whose loader thread
 * would add ~30 MB to each one's RSS (and a few MB more to the arm that loads more modules).
 */
function serverScript(): string {
  const src = fileURLToPath(new URL('./lib/memory-server.ts', import.meta.url))
  const out = fileURLToPath(new URL('./.out/memory-server.mjs', import.meta.url))
  const js = ts.transpileModule(readFileSync(src, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText
  mkdirSync(fileURLToPath(new URL('./.out/', import.meta.url)), { recursive: true })
  writeFileSync(out, js)
  return out
}

async function startServer(script: string, arm: Arm, upstreamPort: number): Promise<Server> {
  const child = forkJs(script, ['--arm', arm, '--upstream', String(upstreamPort)], ['--expose-gc'])
  const port = await nextMessage(child, 30_000, (m) => (m as { port?: number }).port)
  return {
    origin: `http://127.0.0.1:${port}`,
    mem: () => {
      const answer = nextMessage(child, 30_000, (m) => (m as { mem?: NodeJS.MemoryUsage }).mem)
      child.send({ mem: true })
      return answer
    },
    stop: () => void child.kill('SIGTERM'),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Both halves of the mesh at work in the Weft arm, and in no other: its answer carries the mesh's
 * weft-load header (the server half), and its metrics count the outbound calls to upstream (the client half).
 */
async function probe(a: Arm, server: Server): Promise<void> {
  const r = await request(server.origin + PATH)
  const body = await r.body.text()
  if (r.statusCode !== 200 || body !== BODY) throw new Error(`${a}: GET ${PATH} answered ${r.statusCode} ${JSON.stringify(body)}, expected 200 ${BODY}`)
  if ((r.headers['weft-load'] !== undefined) !== (a === 'weft')) throw new Error(`${a}: weft-load header ${a === 'weft' ? 'missing' : 'present'}`)
  if (a !== 'weft') return
  const metrics = await (await request(server.origin + '/metrics')).body.text()
  if (!metrics.split('\n').some((l) => l.startsWith('http_client_request_duration_seconds_count{') && l.includes('destination_service="upstream"'))) throw new Error('weft: no outbound calls to upstream in its metrics')
}

interface Samples {
  idle: NodeJS.MemoryUsage[]
  load: NodeJS.MemoryUsage[]
  /** Under the same fixed rate for both arms (open loop). */
  fixed: NodeJS.MemoryUsage[]
  /** req/s of each measured run. */
  rps: number[]
}

interface Plan {
  warmMs: number
  rounds: number
  runMs: number
  /** The equal-rate phase: rounds of runMs per arm at `rate` req/s, below both arms' closed-loop throughput. */
  fixedRounds: number
  rate: number
}

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  // Full: ~59 s here; quick: ~10 s.
  const plan: Plan = o.quick ? { warmMs: 500, rounds: 3, runMs: 600, fixedRounds: 2, rate: 1_000 } : { warmMs: 3_000, rounds: 8, runMs: 2_000, fixedRounds: 4, rate: 2_000 }
  if (o.profile) throw new Error('memory has no CPU profile to take; --only ARM runs one arm alone')
  if (o.only && !(o.only in ARMS)) throw new Error(`no arm "${o.only}" (have: ${Object.keys(ARMS).join(', ')})`)
  const arms = (o.only ? [o.only] : Object.keys(ARMS)) as Arm[]
  let upstream: Upstream | undefined
  let load: LoadGen | undefined
  const servers = {} as Record<Arm, Server>
  try {
    upstream = await startUpstream(1)
    const loading = startLoadGen()
    const script = serverScript()
    await Promise.all(arms.map(async (a) => (servers[a] = await startServer(script, a, upstream!.ports[0]!))))
    load = await loading
    const s = Object.fromEntries(arms.map((a) => [a, { idle: [], load: [], fixed: [], rps: [] } as Samples])) as Record<Arm, Samples>
    // Idle: started, nothing served yet.
    for (let i = 0; i < IDLE_SAMPLES; i++) {
      for (const a of arms) s[a].idle.push(await servers[a].mem())
      await sleep(100)
    }
    const drive = async (a: Arm, ms: number): Promise<LoadResult> => {
      const r = await load!.closed(servers[a].origin, PATH, BODY, ms, CONCURRENCY)
      if (r.errors > 0) throw new Error(`${a}: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}`)
      return r
    }
    for (const a of arms) await probe(a, servers[a])
    // The same rate for both, first: the closed loop drives each arm as fast as it goes, so the two
    // do different amounts of work (and garbage) per second, and V8's young generation, once grown,
    // stays grown; at one fixed rate, before any closed loop, they do the same.
    for (const a of arms) await load.fixed(servers[a].origin, PATH, BODY, plan.warmMs / 2, plan.rate)
    for (let round = 0; round < plan.fixedRounds; round++) {
      for (const a of round % 2 ? [...arms].reverse() : arms) {
        const running = load.fixed(servers[a].origin, PATH, BODY, plan.runMs, plan.rate).then((r) => {
          if (r.errors > 0) throw new Error(`${a} at ${plan.rate} req/s: ${r.errors} of ${r.requests} requests failed; first: ${String(r.firstError)}`)
        })
        await sleep(plan.runMs / 2)
        s[a].fixed.push(await servers[a].mem())
        await running
      }
    }
    for (const a of arms) await drive(a, plan.warmMs)
    for (let round = 0; round < plan.rounds; round++) {
      // Order flips every round, as in the other scenarios, so drift falls on both arms alike.
      for (const a of round % 2 ? [...arms].reverse() : arms) {
        const running = drive(a, plan.runMs)
        // Sampled halfway through the run: requests in flight, pools and connections open.
        await sleep(plan.runMs / 2)
        s[a].load.push(await servers[a].mem())
        const r = await running
        s[a].rps.push((r.requests - r.shed) / r.seconds)
      }
    }
    return report(o, plan, arms, s)
  } finally {
    load?.stop()
    for (const a of arms) servers[a]?.stop()
    upstream?.stop()
  }
}

function report(o: ScenarioOptions, plan: Plan, arms: Arm[], s: Record<Arm, Samples>): ScenarioResult {
  const MB = 2 ** 20
  const med = (xs: NodeJS.MemoryUsage[], k: keyof NodeJS.MemoryUsage) => median(xs.map((x) => x[k])) / MB
  const mb = (n: number) => `${n.toFixed(1)} MB`
  const spread = (xs: NodeJS.MemoryUsage[]) => `${(Math.min(...xs.map((x) => x.rss)) / MB).toFixed(1)}–${(Math.max(...xs.map((x) => x.rss)) / MB).toFixed(1)}`
  const row = (a: Arm) => [ARMS[a], mb(med(s[a].idle, 'rss')), mb(med(s[a].idle, 'heapUsed')), `**${mb(med(s[a].load, 'rss'))}** (${spread(s[a].load)})`, mb(med(s[a].load, 'heapTotal')), mb(med(s[a].load, 'heapUsed')), mb(med(s[a].load, 'external')), fmt.int(median(s[a].rps)), `${mb(med(s[a].fixed, 'rss'))} (${spread(s[a].fixed)})`, mb(med(s[a].fixed, 'heapUsed'))]
  const rows = arms.map(row)
  const both = arms.length === 2
  const added = (k: keyof NodeJS.MemoryUsage, phase: 'idle' | 'load' | 'fixed') => med(s.weft[phase], k) - med(s.bare[phase], k)
  const signed = (n: number) => `${n >= 0 ? '+' : '−'}${Math.abs(n).toFixed(1)} MB`
  if (both) rows.push(['added by Weft', signed(added('rss', 'idle')), signed(added('heapUsed', 'idle')), `**${signed(added('rss', 'load'))}**`, signed(added('heapTotal', 'load')), signed(added('heapUsed', 'load')), signed(added('external', 'load')), '—', `**${signed(added('rss', 'fixed'))}**`, signed(added('heapUsed', 'fixed'))])
  const goals = both ? [{ text: `memory: ≤ ${GOAL_MB} MB RSS added by the mesh (service under load, after GC) (measured ${signed(added('rss', 'load'))}; at the same ${fmt.int(plan.rate)} req/s for both, ${signed(added('rss', 'fixed'))})`, met: added('rss', 'load') <= GOAL_MB }] : []
  const markdown = [
    `### memory — RSS of a service with and without the mesh`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`node --expose-gc --import tsx bench/memory.ts\`${o.quick ? ' (this run: --quick)' : ''}${o.only ? ` --only ${o.only}` : ''}.`,
    ``,
    `Each arm is one server process (plain \`node --expose-gc\`, no tsx: lib/memory-server.ts with its types stripped) running the same node:http app: one route, \`GET ${PATH}\`, that calls a small upstream (lib/upstream.ts, its own process) and answers with its body, so both halves of the mesh work on every request. ` +
      `**bare**: the handler on a plain node:http server, the outbound call through an undici \`Pool\`. ` +
      `**Weft**: \`createMesh\` from dist/ with a static Service for the upstream and default layers, the same handler behind \`mesh.listen(server, { port, host, route })\`, the outbound call through \`mesh.request('http://upstream/ok')\`. ` +
      `One load generator (lib/load-gen.ts) drives each in turn, ${CONCURRENCY} requests in flight (closed loop); every answer must be 200 with the upstream's body. ` +
      `Before the load, each arm is checked: the mesh's \`weft-load\` header on its answer exactly when behind Weft, and the Weft arm's metrics counting its calls to the upstream.`,
    ``,
    `**Idle**: ${IDLE_SAMPLES} samples right after start, before any request. **Under load**: after a ${plan.warmMs / 1000} s warm-up per arm, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm (order flipped every round), one sample halfway through each run, with requests in flight. ` +
      `Each sample is \`process.memoryUsage()\` in the server's process right after two forced full GCs (\`gc()\`); medians. RSS after a GC still holds the pages V8 and the allocator keep for reuse, so it moves by a few MB between samples (range in brackets); heapTotal is the V8 heap committed (live objects, code, and the room the young generation grew to), heapUsed what is live in it. ` +
      `**At ${fmt.int(plan.rate)} req/s**: the closed loop runs each arm as fast as it goes, so the two serve different numbers of requests (and make different amounts of garbage) a second; so before the closed loop (V8's young generation, once grown by it, stays grown) a ${plan.warmMs / 2000} s warm-up and ${plan.fixedRounds} rounds of ${plan.runMs / 1000} s per arm at one fixed rate (open loop, below both arms' closed-loop throughput), sampled the same way. The goal reads the closed loop, as before.`,
    ``,
    table(['arm', 'RSS, idle', 'heapUsed, idle', 'RSS, under load (range)', 'heapTotal, under load', 'heapUsed, under load', 'external, under load', 'req/s (median)', `RSS at ${fmt.int(plan.rate)} req/s (range)`, `heapUsed at ${fmt.int(plan.rate)} req/s`], rows),
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    o.quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: o.only ? `memory --only ${o.only}` : 'memory', markdown, goals }
}

scenario({
  run,
  // The load generator is lib/load-gen.ts, driven over IPC by run(); this scenario has no client arms.
  arm: (name) => Promise.reject(new Error(`memory has no client arm "${name}"; use --only ${Object.keys(ARMS).join('|')}`)),
}, 90_000)
