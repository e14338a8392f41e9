// Scenario: one policy change pushed by the control daemon to N watching instances (ControlClients in
// processes of their own, each with its own connections, as N meshes would have) — time until each
// has the new version and until all have ACKed — and the daemon's memory per connected instance;
// at 1,000 instances, and at 10,000 (or as many as the descriptor limit allows).
import { readFileSync } from 'node:fs'
import { startDaemon, startWatchers, type DaemonMem, type Fleet } from './lib/control-fleet.js'
import { fmt, scenario, table, type Goal, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

const GOAL_P99_MS = 1000
const GOAL_KB = 20
const GOAL_10K_P99_MS = 5000
/**
 * A round ends this long after the last ACK answered once all hold the version (a lost ACK is only
 * sent again with the next ping): longer than the 4 s between a SYN's 2nd and 3rd retransmission.
 */
const QUIET_MS = 8_000

interface Tier extends Fleet {
  leaseTtlMs: number
  rounds: number
  /** The longest a round waits for every receipt and ACK. */
  waitMs: number
}

/** As the 1,000-instance figures always were: serving instances (endpoints of checkout), all connecting at once, one process. */
const serving = (n: number, rounds: number): Tier => ({ n, procs: 1, serving: true, window: n, spread: false, leaseTtlMs: 60_000, rounds, waitMs: 10_000, connectTimeoutMs: 60_000 })

/**
 * 10,000: client-only instances over 4 processes (each dialing its own loopback address), at most
 * 100 per process connecting at once, and a lease long enough (600 s) that no ping — to which all
 * 10,000 answer at once — falls in the run. Why each: see the scenario's text.
 */
/**
 * The daemon keeps two connections per instance (its watch stream and its calls, kept alive so a
 * heartbeat or ACK costs no new connection, over mTLS no handshake). 10,000 instances need more
 * than 20,000 descriptors in one process; where the hard limit is lower the tier is as large as it
 * allows, and says so.
 */
const BIG_N = Math.min(10_000, Math.floor((hardFdLimit() - 1_000) / 2 / 500) * 500)
const BIG: Tier = { n: BIG_N, procs: 4, serving: false, window: 100, spread: true, leaseTtlMs: 600_000, rounds: 2, waitMs: 15_000, connectTimeoutMs: 60_000 }

interface TierResult {
  tier: Tier
  connectMs: number
  /** ms from just before POST /v1/policy to each instance's receipt, all rounds. */
  received: number[]
  /** Per round: instances that got the version, ACKs answered, ms until the last (when all n), daemon CPU ms, SYNCED per the daemon's status. */
  rounds: { got: number; acked: number; allAckedMs: number | undefined; cpuMs: number; synced: number }[]
  perInstanceKB: { heap: number; external: number; rss: number }
  daemon: DaemonMem
  instancesRssMB: number
}

const policy = (timeout: string): string => `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: ${timeout}, retries: { attempts: 2 } }
`
/** Epoch ms, the clock the instance processes stamp with. */
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** The hard descriptor limit (children inherit it); 1,048,576 when Linux does not say. */
function hardFdLimit(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return m ? Number(m[1]) : 1_048_576
  } catch {
    return 1_048_576
  }
}
/** This process's descriptor limit, soft/hard (its children inherit it), where Linux shows it. */
function fdLimit(): string {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    const n = (x: string) => (/^\d+$/.test(x) ? fmt.int(Number(x)) : x)
    return m ? `${n(m[1]!)} / ${n(m[2]!)}` : 'unknown'
  } catch {
    return 'unknown'
  }
}
const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

async function runTier(t: Tier): Promise<TierResult> {
  const daemon = await startDaemon(t.leaseTtlMs, t.spread)
  let watchers: Awaited<ReturnType<typeof startWatchers>> | undefined
  try {
    await daemon.admin('POST', '/v1/policy', policy('5s'))
    const memBefore = await daemon.mem()
    watchers = await startWatchers(daemon, t)
    const t0 = now()
    // Registrations arrive as endpoint deltas: wait until the daemon is quiet (all SYNCED at one version).
    while ((await daemon.synced()).synced !== t.n) {
      if (now() - t0 > t.connectTimeoutMs) throw new Error(`${t.n} instances not all SYNCED within ${t.connectTimeoutMs / 1000} s`)
      await sleep(t.n > 2_000 ? 250 : 20)
    }
    // From the first instance started (not its process) to all SYNCED.
    const connectMs = watchers.connectMs + (now() - t0)
    const memAfter = await daemon.mem()
    const instancesRssMB = (await watchers.mem()).rss / 2 ** 20
    const received: number[] = []
    const rounds: TierResult['rounds'] = []
    for (let r = 0; r < t.rounds; r++) {
      const cpu0 = await daemon.cpuMicros()
      const start = now()
      const { version } = await daemon.admin('POST', '/v1/policy', policy(`${r + 6}s`))
      let last = { got: -1, acked: -1, at: 0 }
      let changed = now()
      for (;;) {
        await sleep(50)
        const [got, acks] = await Promise.all([watchers.progress(version), daemon.acks(start)])
        if (got !== last.got || acks.instances !== last.acked) changed = now()
        last = { got, acked: acks.instances, at: acks.last }
        if ((got >= t.n && acks.instances >= t.n) || now() - start > t.waitMs || (got >= t.n && now() - changed > QUIET_MS)) break
      }
      const cpuMs = ((await daemon.cpuMicros()) - cpu0) / 1000
      const times = await watchers.times(version)
      received.push(...times.map((x) => x - start))
      const allAcked = last.acked >= t.n ? last.at - start : undefined
      rounds.push({ got: times.length, acked: last.acked, allAckedMs: allAcked, cpuMs, synced: (await daemon.synced()).synced })
    }
    const perInstance = (k: keyof DaemonMem) => ((memAfter[k] ?? 0) - (memBefore[k] ?? 0)) / t.n / 1024
    const daemonNow = await daemon.mem()
    return { tier: t, connectMs, received: received.sort((a, b) => a - b), rounds, perInstanceKB: { heap: perInstance('heapUsed'), external: perInstance('external'), rss: perInstance('rss') }, daemon: { ...memAfter, fdsPeak: Math.max(memAfter.fdsPeak ?? 0, daemonNow.fdsPeak ?? 0) }, instancesRssMB }
  } finally {
    // No deregistration: 10,000 DELETEs would only add time; the daemon goes with them.
    watchers?.stop()
    await daemon.stop()
  }
}

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const tiers = o.quick ? [serving(200, 2), serving(1_000, 2)] : [serving(1_000, 5), BIG]
  const results: (TierResult | { tier: Tier; error: string })[] = []
  for (const t of tiers) {
    // The 10,000 tier may not fit a machine; it then says why, and the scenario still reports the rest.
    results.push(await runTier(t).catch((err: unknown) => {
      if (t !== BIG) throw err
      return { tier: t, error: String((err as Error)?.message ?? err) }
    }))
  }
  return report(o.quick, results)
}

function report(quick: boolean, results: (TierResult | { tier: Tier; error: string })[]): ScenarioResult {
  const ok = results.filter((r): r is TierResult => !('error' in r))
  const p99 = (r: TierResult) => quantile(r.received, 0.99)
  const complete = (r: TierResult) => r.rounds.every((x) => x.got === r.tier.n)
  const goals: Goal[] = []
  const main = ok.find((r) => r.tier.n === 1_000)
  if (main) {
    const kb = main.perInstanceKB.heap + main.perInstanceKB.external
    goals.push(
      { text: `control-push: policy change to ${fmt.int(main.tier.n)} instances, p99 until received ≤ ${GOAL_P99_MS} ms (measured ${p99(main).toFixed(0)} ms)`, met: complete(main) && p99(main) <= GOAL_P99_MS },
      { text: `control-push: daemon memory per connected instance ≤ ${GOAL_KB} KB (measured ${kb.toFixed(1)} KB heap + external)`, met: kb <= GOAL_KB },
    )
  }
  const big = results.find((r) => r.tier === BIG)
  if (big) {
    const measured = 'error' in big ? `did not run: ${big.error}` : complete(big) ? `measured ${p99(big).toFixed(0)} ms` : `not all received within ${BIG.waitMs / 1000} s`
    goals.push({ text: `control-push: policy change to ${fmt.int(BIG.n)} instances${BIG.n < 10_000 ? ' (10,000 needs more descriptors than this machine allows)' : ''}, p99 until received ≤ ${GOAL_10K_P99_MS} ms (${measured})`, met: !('error' in big) && complete(big) && p99(big) <= GOAL_10K_P99_MS })
  }
  const ms = (x: number) => `${x < 100 ? x.toFixed(1) : fmt.int(x)} ms`
  const allAcked = (r: TierResult) => {
    const short = r.rounds.filter((x) => x.allAckedMs === undefined)
    if (short.length === 0) return ms(Math.max(...r.rounds.map((x) => x.allAckedMs!)))
    const fewest = Math.min(...short.map((x) => x.acked))
    return `not in ${short.length} of ${r.rounds.length} rounds (fewest: ${fmt.int(fewest)} of ${fmt.int(r.tier.n)}; see the text above)`
  }
  const col = (f: (r: TierResult) => string) => results.map((r) => ('error' in r ? '—' : f(r)))
  const rows = [
    ['received, p50', ...col((r) => ms(quantile(r.received, 0.5)))],
    ['received, p99', ...col((r) => `**${ms(p99(r))}**${complete(r) ? '' : ` (only ${fmt.int(Math.min(...r.rounds.map((x) => x.got)))} of ${fmt.int(r.tier.n)} in a round)`}`)],
    ['received, max', ...col((r) => ms(r.received[r.received.length - 1]!))],
    ['all ACKed (worst round)', ...col(allAcked)],
    ['daemon CPU per round (the push, then the ACKs), worst', ...col((r) => ms(Math.max(...r.rounds.map((x) => x.cpuMs))))],
    ['SYNCED in GET /v1/status after each round', ...col((r) => r.rounds.map((x) => fmt.int(x.synced)).join(', '))],
    ['connected and SYNCED in', ...col((r) => `${fmt.int(r.connectMs)} ms`)],
    ['daemon heap per connected instance', ...col((r) => `${r.perInstanceKB.heap.toFixed(1)} KB`)],
    ['daemon external+buffers per instance', ...col((r) => `${r.perInstanceKB.external.toFixed(1)} KB`)],
    ['daemon RSS per instance (noisy: includes allocator slack)', ...col((r) => `${r.perInstanceKB.rss.toFixed(1)} KB`)],
    ['daemon descriptors, connected / peak in the rounds', ...col((r) => `${r.daemon.fds === undefined ? '?' : fmt.int(r.daemon.fds)} / ${r.daemon.fdsPeak === undefined ? '?' : fmt.int(r.daemon.fdsPeak)}`)],
  ]
  const head = ['measure', ...results.map((r) => `${fmt.int(r.tier.n)} instances${'error' in r ? ' (did not run)' : ''}`)]
  const bigText = !big ? '' : `

**${fmt.int(BIG.n)} instances** are set up differently, each for a reason found running them here: they register client-only (no address), because as endpoints of one service every instance would hold all the others' endpoints in its view — about 30 GB across the bench's instance processes at 10,000, extrapolating the ~300 KB of heap each of 1,000 serving instances holds — and every registration would push the full list to every watcher; they are spread over ${BIG.procs} processes dialing 127.0.0.1–127.0.0.${BIG.procs} (the daemon listens on 0.0.0.0; only loopback addresses are dialed), because each instance holds two connections and 20,000 to one address and port fill most of the machine's ephemeral port range, after which each connect() spends milliseconds searching it; at most ${BIG.window} per process connect at once; and the daemon's lease is ${BIG.leaseTtlMs / 1000} s, so no ping (to which every instance answers at once) falls in a round and the figures are one push's. ` +
    `The daemon holds two descriptors per instance (watch stream and kept-alive calls) against a \`ulimit -n\` of ${fdLimit()} (soft / hard) here${BIG.n < 10_000 ? `, which is why this tier has ${fmt.int(BIG.n)} instances, not 10,000` : ''}. An ACK that does not get through (given up by the instance after its 3 s request timeout) is only sent again with the next ping — so "all ACKed" may not happen within a round; a round ends ${QUIET_MS / 1000} s after the last ACK answered, or after ${BIG.waitMs / 1000} s. On this machine's 2 cores the daemon and the ${BIG.procs} instance processes share the CPU: each instance process's own work on a push (${fmt.int(BIG.n / BIG.procs)} ACKs) competes with receiving it.` +
    ('error' in big ? `\n\nThe ${fmt.int(BIG.n)}-instance tier did not run: ${big.error}.` : ` The instance processes held ${fmt.int(ok.find((r) => r.tier === BIG)!.instancesRssMB)} MB RSS.`)
  const markdown = `### control-push — one policy change pushed to ${results.map((r) => fmt.int(r.tier.n)).join(' and ')} watching instances

Command: \`npm run bench\` runs it with the rest; alone: \`node --expose-gc --import tsx bench/control-push.ts\`${quick ? ' (this run: --quick)' : ''}.

The daemon (embedded store, in a child process of its own, started afresh for each column) holds one watch stream from each ControlClient; the ControlClients run in processes of their own, each with its own undici Agent, so its own connections, as separate meshes would have; their apply records the arrival time and ACKs at once — the instance's own compile is not in these figures. Each round applies one changed Service through \`POST /v1/policy\` and times, from just before the call: each instance's receipt of the new version, and each ACK the daemon answered (seen through node:http's diagnostics channel in the daemon's process; the daemon records an ACK before answering it, whether or not the instance still waits for the answer). After each round one \`GET /v1/status\` counts the instances SYNCED at the new version. Rounds: ${results.map((r) => `${r.tier.rounds} at ${fmt.int(r.tier.n)}`).join(', ')}.

Up to 1,000 instances: all in one process, each also registered as an endpoint of \`checkout\` (so each holds every instance's endpoint, and registrations reach every watcher as endpoint deltas), all connecting at once, daemon lease 60 s.${bigText}

${table(head, rows)}

${goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`).join('\n')}
`
  return { title: 'control-push', markdown, goals }
}

scenario({ run, arm: async () => { throw new Error('control-push has no client arms') } }, 150_000)
