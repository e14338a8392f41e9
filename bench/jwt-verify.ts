// Scenario: RequestAuthentication verification throughput with cached keys — jose `jwtVerify`
// alone vs Weft's authenticator on tokens it has not seen (a real verify) and on tokens it has
// (the verified-token cache), ES256 and RS256. CPU only: one process, alternating slices.
import http from 'node:http'
import { performance } from 'node:perf_hooks'
import { SignJWT, exportJWK, generateKeyPair, jwtVerify, type CryptoKey, type JWK } from 'jose'
import { loadText } from '../src/config/load.js'
import { formatIssue, validatePolicy } from '../src/config/validate.js'
import { compileRequestAuth, type AuthnInput, type JwtAuthenticator } from '../src/identity/jwt/authenticator.js'
import { JwksRegistry } from '../src/identity/jwt/jwks-cache.js'
import type { RequestAuthSettings } from '../src/config/types.js'
import { median } from './lib/load.js'
import { fmt, scenario, table, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

type Alg = 'ES256' | 'RS256'
const ALGS: Alg[] = ['ES256', 'RS256']
/** Operations in flight: WebCrypto verifies run on libuv's thread pool, so a server has several at once. */
const CONCURRENCY = 8
const AUDIENCE = 'payments'
const TOLERANCE_S = 30

const ARMS = {
  jose: 'jose `jwtVerify`, CryptoKey imported once (baseline)',
  'jose-jwk': 'jose `jwtVerify`, the JWK object (jose caches its import; what Weft passes)',
  'weft-first': 'Weft `authenticate()`, token not seen before (verifies)',
  'weft-hit': 'Weft `authenticate()`, token verified before (cache hit)',
} as const satisfies Record<string, string>
type Arm = keyof typeof ARMS

interface Slice {
  ops: number
  seconds: number
  /** process.cpuUsage over the slice: the main thread and the thread pool, µs. */
  cpuMicros: number
  /** The main thread's busy time over the slice (event-loop utilization), µs. */
  mainMicros: number
}

/** `concurrency` loops calling `op(i)` with i = 0, 1, 2… for `ms`; every op must resolve true. */
async function slice(op: (i: number) => Promise<boolean>, ms: number, concurrency: number): Promise<Slice> {
  let next = 0
  let failed: unknown
  const elu0 = performance.eventLoopUtilization()
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const end = t0 + ms
  const loop = async () => {
    while (performance.now() < end && failed === undefined) {
      const ok = await op(next++).catch((err: unknown) => {
        failed = err
        return true
      })
      if (!ok) failed ??= new Error(`operation ${next - 1} did not verify`)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const elu = performance.eventLoopUtilization(elu0)
  if (failed !== undefined) throw failed instanceof Error ? failed : new Error(String(failed))
  return { ops: next, seconds, cpuMicros: cpu.user + cpu.system, mainMicros: elu.active * 1000 }
}

interface AlgSetup {
  alg: Alg
  issuer: string
  tokens: string[]
  inputs: AuthnInput[]
  cryptoKey: CryptoKey
  jwk: JWK
  settings: RequestAuthSettings[]
}

/** A key pair, `count` distinct tokens (each its own sub and jti), their requests, and the rule. */
async function setup(alg: Alg, count: number, jwksUrl: (alg: Alg) => string, keys: Map<Alg, JWK>): Promise<AlgSetup> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `bench-${alg.toLowerCase()}`
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  keys.set(alg, jwk)
  const issuer = `https://${alg.toLowerCase()}.issuer.bench`
  const now = Math.floor(Date.now() / 1000)
  // A typical end-user token: issuer, subject, audience, times, a few claims (about 400 bytes).
  const tokens = await Promise.all(Array.from({ length: count }, (_, i) => new SignJWT({ scope: 'orders:read orders:write', email: `user-${i}@example.com`, tenant: 'acme' })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(issuer).setSubject(`user-${i}`).setAudience(AUDIENCE).setIssuedAt(now - 10).setExpirationTime(now + 3600).setJti(`jti-${i}`)
    .sign(privateKey)))
  const yaml = `apiVersion: weft/v1
kind: RequestAuthentication
metadata: { name: bench-${alg.toLowerCase()} }
spec:
  service: payments
  jwtRules:
    - issuer: ${JSON.stringify(issuer)}
      jwksUri: ${JSON.stringify(jwksUrl(alg))}
      audiences: [${AUDIENCE}]
      algorithms: [${alg}]
`
  const policy = validatePolicy(loadText(yaml, `bench-${alg}.yaml`))
  const errors = policy.issues.filter((i) => i.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map(formatIssue).join('\n'))
  // The CryptoKey of the baseline comes from the same public JWK the key set serves.
  const { importJWK } = await import('jose')
  const cryptoKey = (await importJWK(jwk, alg)) as CryptoKey
  return { alg, issuer, tokens, inputs: tokens.map((t) => ({ headers: { authorization: `Bearer ${t}` }, query: '' })), cryptoKey, jwk, settings: policy.requestAuthentication }
}

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const plan = o.quick ? { tokens: 200, warmMs: 100, rounds: 2, sliceMs: 100 } : { tokens: 1_000, warmMs: 300, rounds: 6, sliceMs: 250 }
  // The issuers' JWKS, served on loopback: fetched once per issuer, then the keys are cached.
  const keys = new Map<Alg, JWK>()
  const server = http.createServer((req, res) => {
    const alg = ALGS.find((a) => req.url === `/${a.toLowerCase()}/jwks.json`)
    const key = alg && keys.get(alg)
    res.writeHead(key ? 200 : 404, { 'content-type': 'application/json' }).end(key ? JSON.stringify({ keys: [key] }) : '{}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  const jwks = new JwksRegistry()
  try {
    const setups = await Promise.all(ALGS.map((alg) => setup(alg, plan.tokens, (a) => `${base}/${a.toLowerCase()}/jwks.json`, keys)))
    const compile = (s: AlgSetup): JwtAuthenticator => {
      const a = compileRequestAuth(s.settings, { service: 'payments', namespace: 'default', jwks })
      if (!a) throw new Error('no authenticator compiled')
      return a
    }
    const ok = (r: Awaited<ReturnType<JwtAuthenticator['authenticate']>>) => r.kind === 'ok'
    // Per algorithm: the arms' operations. weft-first compiles a new authenticator (an empty token
    // cache, the same warm key cache) each time it has been through every token once.
    const arms = new Map<Alg, Record<Arm, { op: (i: number) => Promise<boolean>; before?: () => Promise<void>; check?: () => void }>>()
    for (const s of setups) {
      const n = s.tokens.length
      const options = { algorithms: [s.alg], issuer: s.issuer, audience: [AUDIENCE], clockTolerance: TOLERANCE_S, requiredClaims: ['exp', 'sub'] }
      const jose = (key: CryptoKey | JWK) => async (i: number) => (await jwtVerify(s.tokens[i % n]!, key, { ...options, currentDate: new Date() })).payload.sub === `user-${i % n}`
      let first = compile(s)
      let firstPass = 0
      let firstStats = first.stats()
      let hit = compile(s)
      let hitStats = hit.stats()
      let hitWarmAt = -Infinity
      arms.set(s.alg, {
        jose: { op: jose(s.cryptoKey) },
        'jose-jwk': { op: jose(s.jwk) },
        'weft-first': {
          op: (i) => {
            const pass = Math.floor(i / n)
            if (pass !== firstPass) {
              firstPass = pass
              first = compile(s)
            }
            return first.authenticate(s.inputs[i % n]!).then(ok)
          },
          before: async () => {
            first = compile(s)
            firstStats = first.stats()
            firstPass = 0
          },
          check: () => {
            if (first.stats().cacheHits !== firstStats.cacheHits) throw new Error(`${s.alg} weft-first: the token cache answered (${first.stats().cacheHits - firstStats.cacheHits} hits)`)
          },
        },
        'weft-hit': {
          op: (i) => hit.authenticate(s.inputs[i % n]!).then(ok),
          // Untimed: every token verified, by an authenticator less than 30 s old (cache entries
          // last 60 s), so no entry runs out during the slice and the slice only hits.
          before: async () => {
            if (Date.now() - hitWarmAt > 30_000) {
              hit = compile(s)
              for (const input of s.inputs) if (!ok(await hit.authenticate(input))) throw new Error(`${s.alg}: a token did not verify`)
              hitWarmAt = Date.now()
            }
            hitStats = hit.stats()
          },
          check: () => {
            if (hit.stats().verifications !== hitStats.verifications) throw new Error(`${s.alg} weft-hit: ${hit.stats().verifications - hitStats.verifications} verification(s) in a cache-hit slice`)
          },
        },
      })
    }
    const armNames = Object.keys(ARMS) as Arm[]
    const measure = async (alg: Alg, a: Arm, ms: number): Promise<Slice> => {
      const arm = arms.get(alg)![a]
      await arm.before?.()
      const r = await slice(arm.op, ms, CONCURRENCY)
      arm.check?.()
      return r
    }
    // Warm-up: JIT, the key caches (the first verify of each issuer fetches its JWKS) and jose's key import.
    for (const alg of ALGS) for (const a of armNames) await measure(alg, a, plan.warmMs)
    const fetchesAfterWarm = jwks.status().reduce((n, s) => n + s.fetches, 0)
    const results = new Map<string, Slice[]>()
    for (let round = 0; round < plan.rounds; round++) {
      // Alternation: algorithms and arms in an order that reverses every round.
      const order = ALGS.flatMap((alg) => armNames.map((a) => [alg, a] as const))
      for (const [alg, a] of round % 2 ? order.reverse() : order) {
        const key = `${alg} ${a}`
        results.set(key, [...(results.get(key) ?? []), await measure(alg, a, plan.sliceMs)])
      }
    }
    const fetches = jwks.status().reduce((n, s) => n + s.fetches, 0)
    if (fetches !== fetchesAfterWarm) throw new Error(`the JWKS was fetched ${fetches - fetchesAfterWarm} time(s) during the measured slices: keys were not cached`)
    return report(o.quick, plan, results, fetches)
  } finally {
    await jwks.close()
    server.close()
  }
}

function report(quick: boolean, plan: { tokens: number; warmMs: number; rounds: number; sliceMs: number }, results: Map<string, Slice[]>, fetches: number): ScenarioResult {
  const get = (alg: Alg, a: Arm) => results.get(`${alg} ${a}`)!
  const opsPerSec = (alg: Alg, a: Arm) => median(get(alg, a).map((s) => s.ops / s.seconds))
  const cpu = (alg: Alg, a: Arm) => median(get(alg, a).map((s) => s.cpuMicros / s.ops))
  const main = (alg: Alg, a: Arm) => median(get(alg, a).map((s) => s.mainMicros / s.ops))
  const usOp = (v: number) => (v >= 10 ? `${v.toFixed(0)} µs` : `${v.toFixed(2)} µs`)
  const rows = ALGS.flatMap((alg) => (Object.keys(ARMS) as Arm[]).map((a) => {
    const ratios = get(alg, a).map((s, i) => s.ops / s.seconds / (get(alg, 'jose')[i]!.ops / get(alg, 'jose')[i]!.seconds))
    const ratio = a === 'jose' ? '1.000×' : `${a === 'weft-first' ? '**' : ''}${fmt.ratio(opsPerSec(alg, a) / opsPerSec(alg, 'jose'))}${a === 'weft-first' ? '**' : ''} (slices ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`
    return [alg, ARMS[a], fmt.int(opsPerSec(alg, a)), ratio, usOp(1e6 / opsPerSec(alg, a)), usOp(cpu(alg, a)), usOp(main(alg, a))]
  }))
  const firstRatio = (alg: Alg) => opsPerSec(alg, 'weft-first') / opsPerSec(alg, 'jose')
  const hitGain = (alg: Alg) => cpu(alg, 'jose') / cpu(alg, 'weft-hit')
  const goals = [
    {
      text: `jwt-verify: Weft's first-time verification ≥ 0.90× jose jwtVerify alone (measured ${ALGS.map((alg) => `${alg} ${firstRatio(alg).toFixed(3)}×`).join(', ')})`,
      met: ALGS.every((alg) => firstRatio(alg) >= 0.9),
    },
    {
      text: `jwt-verify: a verified-token cache hit costs ≤ 1/20 of a jose verify in CPU (measured ${ALGS.map((alg) => `${alg} 1/${hitGain(alg).toFixed(0)}`).join(', ')})`,
      met: ALGS.every((alg) => hitGain(alg) >= 20),
    },
  ]
  const markdown = [
    `### jwt-verify — RequestAuthentication with cached keys: jose alone vs Weft, ES256 and RS256`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`node --expose-gc --import tsx bench/jwt-verify.ts\`${quick ? ' (this run: --quick)' : ''}.`,
    ``,
    `A CPU-only micro-benchmark, so everything runs in one process (no network on the measured path) and the arms alternate in slices: ` +
      `${plan.rounds} rounds of one ${plan.sliceMs} ms slice per algorithm and arm, the order reversed every round, after a ${plan.warmMs} ms warm-up slice each; medians of the slices. ` +
      `${CONCURRENCY} operations in flight (jose verifies with WebCrypto, whose signature checks run on libuv's thread pool, as they would under a server's concurrent requests). ` +
      `Keys: one P-256 (ES256) and one RSA-2048 (RS256) key, each its issuer's only key, with a kid. Tokens: ${fmt.int(plan.tokens)} distinct tokens per algorithm ` +
      `(iss, sub, aud, iat, exp, jti and three claims, about 400 bytes), taken in turn. ` +
      `Weft: \`compileRequestAuth\` of a validated RequestAuthentication (issuer, \`jwksUri\` on a loopback server, audiences, the one algorithm; defaults otherwise: bearer token in ` +
      `\`authorization\`, 30 s clock tolerance), called as the inbound layer calls it, \`authenticate({ headers, query })\`: it finds the token, checks its header, ` +
      `looks the key up in the JWKS cache (fetched ${fetches} time(s) in all, during warm-up: the keys are cached), verifies with jose, and remembers the token. ` +
      `"Not seen before": a new authenticator (empty token cache, same key cache) each time the tokens have all been used once, so no call hits the cache (checked). ` +
      `"Verified before": an authenticator that verified every token (untimed, before the slice); no call verifies (checked). ` +
      `Baseline: jose \`jwtVerify\` on the same tokens with the same options Weft passes (algorithms, issuer, audience, clock tolerance, required exp and sub). ` +
      `Weft's code here is src/ through tsx (compileRequestAuth is not in the package's public API), which adds esbuild's keepNames renaming to closures; dist/ has none.`,
    ``,
    `Columns: operations per second (median), ratio to jose with a CryptoKey, wall time per operation at ${CONCURRENCY} in flight (1 / throughput), CPU per operation ` +
      `(\`process.cpuUsage()\`: the main thread and the thread pool), and the main thread's share (event-loop utilization): what it takes from the request path.`,
    ``,
    table(['alg', 'arm', 'ops/s', 'ratio to jose', 'wall µs/op', 'CPU µs/op (all threads)', 'main thread µs/op'], rows),
    ``,
    ...ALGS.map((alg) => `- ${alg}: a verify costs Weft ${usOp(cpu(alg, 'weft-first'))} of CPU (jose alone ${usOp(cpu(alg, 'jose'))}: ${cpu(alg, 'weft-first') >= cpu(alg, 'jose') ? '+' : '−'}${usOp(Math.abs(cpu(alg, 'weft-first') - cpu(alg, 'jose')))}); ` +
      `a cached token ${usOp(cpu(alg, 'weft-hit'))}, ${hitGain(alg).toFixed(0)}× less than a jose verify.`),
    ``,
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  return { title: 'jwt-verify', markdown, goals }
}

scenario({ run, arm: async () => { throw new Error('jwt-verify has no client arms: it runs in one process') } }, 120_000)
