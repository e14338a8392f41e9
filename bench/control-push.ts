// Scenario: one policy change pushed by the control daemon to N watching instances (ControlClients
// in this process, each with its own connections, as N meshes would have) — time until each has the
// new version and until all have ACKed — and the daemon's memory per connected instance.
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { ControlClient, type ControlView } from '../src/control/client.js'
import { fmt, scenario, type ScenarioOptions, type ScenarioResult } from './lib/scenario.js'

const GOAL_P99_MS = 1000
const GOAL_KB = 20
const silent = { info() {}, warn() {}, error() {} }

interface Mem {
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

function startDaemonHost(dataDir: string): Promise<{ url: string; mem(): Promise<Mem>; stop(): Promise<void> }> {
  const child = fork(fileURLToPath(new URL('./lib/daemon-host.ts', import.meta.url)), [dataDir], { execArgv: ['--expose-gc', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(new Error(`daemon host exited ${code}`)))
    child.once('message', (m: { url: string }) => {
      child.removeAllListeners('exit')
      resolve({
        url: m.url,
        mem: () => new Promise((res) => {
          child.once('message', (r: { mem: Mem }) => res(r.mem))
          child.send({ mem: true })
        }),
        stop: () => new Promise((res) => {
          child.once('exit', () => res())
          child.send({ stop: true })
        }),
      })
    })
  })
}

async function admin(url: string, token: string, method: 'GET' | 'POST', path: string, body?: string): Promise<any> {
  const res = await request(`${url}${path}`, { method, body, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' } })
  const text = await res.body.text()
  if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text}`)
  return JSON.parse(text)
}

const policy = (timeout: string): string => `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec: { timeout: ${timeout}, retries: { attempts: 2 } }
`

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

async function run(o: ScenarioOptions): Promise<ScenarioResult> {
  const n = o.quick ? 100 : 1000
  const rounds = o.quick ? 2 : 5
  const dataDir = mkdtempSync(join(tmpdir(), 'weft-bench-daemon-'))
  const daemon = await startDaemonHost(dataDir)
  const adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim()
  const joinToken = readFileSync(join(dataDir, 'join.token'), 'utf8').trim()
  await admin(daemon.url, adminToken, 'POST', '/v1/policy', policy('5s'))
  const memBefore = await daemon.mem()

  // Each client records when it is handed a version; the apply itself is free (no mesh compile), so
  // the figures are the daemon's push and the transport, not Weft's compile on the instance.
  const seen = new Map<number, number[]>()
  const clients: ControlClient[] = []
  for (let i = 0; i < n; i++) {
    const c = new ControlClient({
      urls: [daemon.url],
      token: joinToken,
      registration: { id: `bench-${i}`, service: 'checkout', address: '127.0.0.1', port: 10_000 + i, protocol: 'http' },
      logger: silent,
      apply: async (view: ControlView) => {
        const at = performance.now()
        let list = seen.get(view.version)
        if (!list) seen.set(view.version, (list = []))
        list.push(at)
        return undefined
      },
    })
    clients.push(c)
    c.start()
  }
  const connectStart = performance.now()
  await Promise.all(clients.map((c) => c.waitForFirstView(60_000)))
  // Registrations arrive as endpoint deltas; wait until the registry is quiet (all SYNCED at one version).
  const settle = async (atLeast = 0): Promise<number> => {
    for (;;) {
      const st = await admin(daemon.url, adminToken, 'GET', '/v1/status')
      if (st.version < atLeast) {
        await new Promise((r) => setTimeout(r, 20))
        continue
      }
      const synced = st.instances.filter((i: { state: string; ackedVersion: number }) => i.state === 'SYNCED' && i.ackedVersion === st.version).length
      if (synced === n) return st.version
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  await settle()
  const connectMs = performance.now() - connectStart
  const memAfter = await daemon.mem()

  const firstSeen: number[] = []
  const allAcked: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    const { version } = await admin(daemon.url, adminToken, 'POST', '/v1/policy', policy(`${r + 6}s`))
    await settle(version)
    allAcked.push(performance.now() - t0)
    const times = seen.get(version) ?? []
    if (times.length !== n) throw new Error(`round ${r}: ${times.length} of ${n} instances got version ${version}`)
    firstSeen.push(...times.map((t) => t - t0))
  }
  await Promise.all(clients.map((c) => c.close()))
  await daemon.stop()
  rmSync(dataDir, { recursive: true, force: true })

  firstSeen.sort((a, b) => a - b)
  allAcked.sort((a, b) => a - b)
  const p50 = quantile(firstSeen, 0.5)
  const p99 = quantile(firstSeen, 0.99)
  const worstAll = allAcked[allAcked.length - 1]!
  const perInstance = (k: keyof Mem) => (memAfter[k] - memBefore[k]) / n / 1024
  const kb = perInstance('heapUsed') + perInstance('external')
  const goals = [
    { text: `control-push: policy change to ${fmt.int(n)} instances, p99 until received ≤ ${GOAL_P99_MS} ms (measured ${p99.toFixed(0)} ms)`, met: p99 <= GOAL_P99_MS },
    { text: `control-push: daemon memory per connected instance ≤ ${GOAL_KB} KB (measured ${kb.toFixed(1)} KB heap + external)`, met: kb <= GOAL_KB },
  ]
  const markdown = `### control-push — one policy change pushed to ${fmt.int(n)} watching instances

Command: \`npm run bench\` runs it with the rest; alone: \`node --expose-gc --import tsx bench/control-push.ts\`${o.quick ? ' (this run: --quick)' : ''}.

The daemon (embedded store, in a child process of its own) holds ${fmt.int(n)} watch streams from ${fmt.int(n)} ControlClients in the bench process (each with its own undici Agent, so its own connections, as separate meshes would have; their apply records the arrival time and ACKs at once — the instance's own compile is not in these figures). Each round applies one changed Service through \`POST /v1/policy\` and times, from just before the call: each instance's receipt of the new version, and until \`GET /v1/status\` (polled every 20 ms) shows all ${fmt.int(n)} SYNCED at it. ${rounds} rounds; ${fmt.int(n)} instances connected and SYNCED in ${fmt.int(connectMs)} ms.

| measure | value |
| --- | --- |
| received, p50 | ${p50.toFixed(1)} ms |
| received, p99 | **${p99.toFixed(1)} ms** |
| received, max | ${firstSeen[firstSeen.length - 1]!.toFixed(1)} ms |
| all ACKed (worst round; 20 ms polling) | ${worstAll.toFixed(0)} ms |
| daemon heap per connected instance | ${perInstance('heapUsed').toFixed(1)} KB |
| daemon external+buffers per instance | ${perInstance('external').toFixed(1)} KB |
| daemon RSS per instance (noisy: includes allocator slack) | ${perInstance('rss').toFixed(1)} KB |

${goals.map((g) => `- ${g.met ? 'MET' : '**MISSED**'}: ${g.text}`).join('\n')}
`
  return { title: `control-push`, markdown, goals }
}

scenario({ run, arm: async () => { throw new Error('control-push has no client arms') } }, 300_000)
