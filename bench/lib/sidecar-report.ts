// The figures and markdown of bench/sidecar.ts: closed- and open-loop tables, goals, the chart, and
// the published sidecar figures (Istio, Linkerd) for scale.
import type { ClosedResult, Histogram, OpenResult } from './load.js'
import { median } from './load.js'
import { fmt, table, type Goal, type ScenarioResult } from './scenario.js'
import type { Arm } from './sidecar-kit.js'

export const PCTS = [50, 90, 99, 99.9]

export interface Plan {
  warmMs: number
  rounds: number
  runMs: number
  openWarmMs: number
  openRounds: number
  openMs: number
  concurrency: number
  rate: number
}

/** What the arm's server-side processes spent during the run: CPU µs (all, and the two nginx alone), new mTLS connections. */
export interface PathCpu {
  pathCpuMicros: number
  proxyCpuMicros: number
  handshakes: number
}
export type ClosedRound = ClosedResult & PathCpu
export interface OpenRound {
  /** The PCTS percentiles of this run, µs. */
  pcts: number[]
  res: OpenResult & PathCpu
}

export interface Figures {
  quick: boolean
  plan: Plan
  arms: Record<Arm, string>
  closed: Record<Arm, ClosedRound[]>
  open: Record<Arm, { merged: Histogram; runs: OpenRound[] }>
  startMs: number
  /** Open-loop runs thrown away and run again because requests piled up past the client's limit (what happened in each). */
  redone: string[]
  nginxPids: number[][]
  nginxVersion: string
}

const ORDER: Arm[] = ['raw', 'sidecar', 'weft', 'weft-authz']
/** CPU seconds per 1,000 requests from µs per request. */
const s1k = (usPerReq: number) => (usPerReq / 1000).toFixed(4)
const signedMs = (us: number) => `${us >= 0 ? '+' : '−'}${(Math.abs(us) / 1000).toFixed(2)} ms`

export function report(f: Figures): ScenarioResult {
  const { plan, closed, open } = f
  const rps = (a: Arm) => median(closed[a].map((r) => r.requests / r.seconds))
  const client = (a: Arm) => median(closed[a].map((r) => r.cpuMicros / r.requests))
  const server = (a: Arm) => median(closed[a].map((r) => r.pathCpuMicros / r.requests))
  const whole = (a: Arm) => median(closed[a].map((r) => (r.cpuMicros + r.pathCpuMicros) / r.requests))
  const perRound = (a: Arm, b: Arm) => closed[a].map((r, i) => r.requests / r.seconds / (closed[b][i]!.requests / closed[b][i]!.seconds))
  const crow = (a: Arm) => {
    const rs = perRound(a, 'sidecar')
    const ratio = a === 'sidecar' ? '1.000×' : `**${fmt.ratio(rps(a) / rps('sidecar'))}** (rounds ${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`
    const handshakes = [...closed[a], ...open[a].runs.map((r) => r.res)].reduce((n, r) => ({ hs: n.hs + r.handshakes, req: n.req + r.requests }), { hs: 0, req: 0 })
    return [f.arms[a], fmt.int(rps(a)), ratio, s1k(client(a)), s1k(server(a)), `**${s1k(whole(a))}**`, a === 'raw' ? '—' : `${whole(a) >= whole('raw') ? '+' : '−'}${s1k(Math.abs(whole(a) - whole('raw')))}`,
      a === 'raw' ? '—' : `${fmt.int(handshakes.hs)} in ${fmt.int(handshakes.req)} req`]
  }
  const openCpu = (a: Arm) => median(open[a].runs.map((r) => r.res.pathCpuMicros / r.res.requests))
  const added = (a: Arm, k: number) => median(open[a].runs.map((r, i) => r.pcts[k]! - open.raw.runs[i]!.pcts[k]!))
  const orow = (a: Arm) => {
    const h = open[a].merged
    return [f.arms[a], ...PCTS.map((p) => fmt.us(h.getValueAtPercentile(p))), fmt.us(h.maxValue), s1k(openCpu(a)), String(Math.max(...open[a].runs.map((r) => r.res.maxInFlight))), fmt.us(Math.max(...open[a].runs.map((r) => r.res.maxSendLagMicros)))]
  }
  const tput = rps('weft') / rps('sidecar')
  const p99s = open.weft.runs.map((r, i) => r.pcts[2]! / open.sidecar.runs[i]!.pcts[2]!)
  const p99 = median(p99s)
  const goals: Goal[] = [
    { text: `sidecar: end-to-end Weft (client + server, mTLS) ≥ 2× the nginx-sidecar path's req/s (measured ${tput.toFixed(2)}×)`, met: tput >= 2 },
    { text: `sidecar: end-to-end Weft p99 at ${fmt.int(plan.rate)} req/s ≤ 0.5× the nginx-sidecar path's (measured ${p99.toFixed(2)}×)`, met: p99 <= 0.5 },
  ]
  // The two nginx's CPU at the fixed rate, in the unit the Istio page uses (vCPU per 1,000 req/s = CPU s per 1,000 requests).
  const proxies = median(open.sidecar.runs.map((r) => r.res.proxyCpuMicros / r.res.requests)) / 1000
  const markdown = [
    `### sidecar — two nginx sidecars with mTLS between them vs Weft in-process end to end, same app, same run`,
    ``,
    `Command: \`npm run bench\` runs it with the rest; alone: \`npx tsup --silent && node --expose-gc --import tsx bench/sidecar.ts\`${f.quick ? ' (this run: --quick)' : ''}. Needs nginx (\`apt-get install nginx\`; .ci/run installs it).`,
    ``,
    `One app for every arm: a node:http server answering \`GET /charge\` with 200 \`ok\` (keep-alive), in a process of its own. A control daemon (its own process, a fresh CA) signs every certificate. ` +
      `**Sidecar path**: the client's undici \`Pool\` (the mesh's pool options) → nginx A on 127.0.0.1 (plaintext in; the client's sidecar) → **mTLS** → nginx B (the server's sidecar) → the app in plaintext. ` +
      `nginx ${f.nginxVersion} as each sidecar: \`worker_processes 1\`, \`access_log off\`, upstream keep-alive pools both ways (\`keepalive 64\`, HTTP/1.1, \`Connection ""\`), \`keepalive_requests\` raised from 1,000 so nginx never re-handshakes mid-run; ` +
      `A presents an X509-SVID for \`checkout\` (\`proxy_ssl_certificate\`) and verifies B (\`proxy_ssl_verify on\` against the bundle, name \`payments\` — the leaf's CN; nginx cannot check a SPIFFE URI SAN); ` +
      `B presents an SVID for \`payments\` and requires a client certificate from the same CA (\`ssl_verify_client on\`). Certificates: SVIDs issued from the daemon's CA (bench/lib/svid.ts), as in mtls-client. ` +
      `**Weft**: \`createMesh({ service: 'checkout', control, token })\` in the client process calls \`http://payments/charge\`; the app runs behind \`mesh.listen(server, { port })\` of a \`payments\` mesh under the same daemon, ` +
      `PeerAuthentication STRICT (every request checked to arrive over TLS), every default layer on both sides. The fourth arm adds an AuthorizationPolicy ALLOW for principal \`checkout\`, on a second server mesh \`payments-authz\` ` +
      `(its own service name, so both Weft arms run side by side; before measuring, a \`ledger\` mesh is checked to get 403 from it). Every request reads and checks the body; any failure fails the run. ` +
      `Each arm's client runs in a process of its own, driven over IPC. Start-up (daemon, app, sidecars, meshes, clients) took ${fmt.int(f.startMs)} ms.`,
    ``,
    `**Closed loop**: ${plan.concurrency} requests in flight, ${plan.rounds} rounds of ${plan.runMs / 1000} s per arm after a ${plan.warmMs / 1000} s warm-up, arm order reversed every round (rounds are cut, in A/B pairs, when a loaded machine would push the scenario past its time limit); medians. ` +
      `CPU is summed over every process of the path: the client (\`process.cpuUsage()\`), the app or the meshed server (the same, over IPC), and each nginx's master and worker (\`/proc/PID/stat\` utime + stime, 10 ms ticks; pids ${f.nginxPids.map((p) => p.join('+')).join(' and ')}). The control daemon is off the request path and not counted. ` +
      `mTLS handshakes: connections the server side accepted during the measured closed and open runs (nginx B's stub_status \`accepts\`; the meshed server's connections — Weft never resumes a session), to show the keep-alive pools held (they were filled during warm-up): each one counted is a request that found every pooled connection busy (requests piling up during a stall: see max in flight) and opened a new connection.`,
    ``,
    table(['arm', 'req/s (median)', 'ratio to sidecar path', 'client CPU s / 1k req', 'server-side CPU s / 1k req', 'whole path CPU s / 1k req', 'added vs raw', 'mTLS handshakes, measured runs'], ORDER.map(crow)),
    ``,
    `**Open loop**: ${fmt.int(plan.rate)} req/s, ${plan.openRounds} round(s) of ${plan.openMs / 1000} s per arm (order alternating) after a ${plan.openWarmMs / 1000} s warm-up, ` +
      `latency from each request's *scheduled* send time (coordinated-omission corrected), HdrHistogram; the table merges an arm's runs. CPU: the server side (app, sidecars or meshed server; the client's is not sampled in this shape) per 1,000 requests at that rate.`,
    ``,
    table(['arm', ...PCTS.map((p) => `p${p}`), 'max', 'server-side CPU s / 1k req', 'max in flight', 'max send lag'], ORDER.map(orow)),
    ``,
    `Added over raw (median over the rounds): sidecar path ${PCTS.map((p, k) => `p${p} ${signedMs(added('sidecar', k))}`).join(', ')}; ` +
      `Weft ${PCTS.map((p, k) => `p${p} ${signedMs(added('weft', k))}`).join(', ')}. Weft p99 ÷ sidecar p99 per round: ${p99s.map((x) => x.toFixed(2)).join(', ')}. ` +
      `The two nginx alone used ${proxies.toFixed(3)} CPU s per 1,000 requests at ${fmt.int(plan.rate)} req/s, i.e. ${(proxies / 2).toFixed(3)} vCPU per 1,000 req/s per proxy.`,
    ``,
    `**What the goals ask, against this run's floor**: raw undici straight to the app (no proxy, no TLS, no mesh) made ${fmt.ratio(rps('raw') / rps('sidecar'))} the sidecar path's req/s, ` +
      `so "≥ 2× the sidecar path" asks Weft with mTLS on both sides for ≥ ${(2 / (rps('raw') / rps('sidecar'))).toFixed(2)}× of that plaintext floor (Weft made ${(rps('weft') / rps('raw')).toFixed(2)}×); ` +
      `and raw's own p99 at ${fmt.int(plan.rate)} req/s was ${median(open.raw.runs.map((r, i) => r.pcts[2]! / open.sidecar.runs[i]!.pcts[2]!)).toFixed(2)}× the sidecar path's, where the p99 goal asks ≤ 0.50×.`,
    ``,
    ...(f.redone.length > 0 ? [`**Open-loop runs run again** (requests piled up past the client's 1,024 in flight and were refused; the run's latency would be that queue, so it was thrown away and the arm run once more): ${f.redone.join('; ')}.`, ``] : []),
    ...goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`),
    ``,
    PUBLISHED,
    f.quick ? `\n_--quick run: figures are not meaningful._` : '',
  ].join('\n')
  const series = (a: Arm, label: string) => {
    const h = open[a].merged
    return { label, p50: h.getValueAtPercentile(50), p90: h.getValueAtPercentile(90), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9) }
  }
  return {
    title: 'sidecar',
    markdown,
    goals,
    profileArms: { base: 'sidecar', weft: 'weft' },
    chart: {
      title: `Sidecar topology, open loop ${fmt.int(plan.rate)} req/s`,
      series: [series('raw', 'raw undici, no proxy'), series('sidecar', 'nginx ×2 sidecars, mTLS'), series('weft', 'Weft end to end, mTLS')],
    },
  }
}

/** Published figures, quoted only where read in the source; other harnesses, clusters and networks: for scale, not comparison. */
const PUBLISHED = [
  `**Published sidecar figures, for scale** (Kubernetes clusters and real networks, other harnesses; only the units compare — vCPU per 1,000 req/s is CPU seconds per 1,000 requests):`,
  ``,
  `- Istio 1.12.3, [Performance and Scalability](https://istio.io/v1.12/docs/ops/deployment/performance-and-scalability): the Envoy proxy uses 0.35 vCPU and 40 MB memory per 1,000 requests per second going through the proxy, and adds 2.65 ms to the 90th percentile latency (1,000 services, 2,000 sidecars, 70,000 mesh-wide req/s).`,
  `- Istio 1.24, the same page ([Chinese edition](https://istio.io/zh/docs/ops/deployment/performance-and-scalability); the English excerpt read stopped before this section): at 1,000 HTTP req/s with 1 KB payloads, one sidecar proxy with 2 worker threads uses about 0.20 vCPU and 60 MB; a ztunnel about 0.06 vCPU and 12 MB. Its 1.24 latency figures were not read, so not quoted.`,
  `- Istio, two proxies end to end: the page's source at [istio/istio.io@01eb742](https://github.com/istio/istio.io/blob/01eb7425ad91263746d9f5dd6b8de06108d3daa2/content/en/docs/ops/deployment/performance-and-scalability/index.md) (release templated; its text dates the CPU figure "as of Istio 1.7"): client + server sidecars add 2.76 ms at p90 and 2.88 ms at p99 over the baseline (1.72 / 1.91 ms with jitter), HTTP/1.1, 1 kB, 1,000 req/s, 16 connections, 2 proxy workers, mTLS on.`,
  `- Linkerd 2.11.1 vs Istio 1.12.0, [Benchmarking Linkerd and Istio: 2021 Redux](https://linkerd.io/2021/11/29/linkerd-vs-istio-benchmarks-2021/) (Kinvolk harness, bare metal, mTLS on in both): at 2,000 RPS, median latency +6 ms (Linkerd) vs +17 ms (Istio) over a 6 ms baseline, max +42 ms vs about +350 ms over 84 ms; ` +
    `max proxy memory 26.3 MB vs 156.2 MB, max proxy CPU time 36 ms vs 67 ms. Its p99 figures are in graphs only, not quoted here.`,
].join('\n')
