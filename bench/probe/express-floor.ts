// What an Express 5 app pays for things other than Weft's per-request work: a middleware, an
// AsyncLocalStorage, the package's modules on the heap, plain heap ballast. Not part of
// `npm run bench` (it explains http-server.ts's Express figure; it is not a goal):
//   npx tsup --silent && node --import tsx bench/probe/express-floor.ts [arms] [rounds]
// arms: comma-separated bench/probe/express-app.ts arms, the first the baseline (default below).
// Each arm is a server process of its own, loaded in turn by one closed-loop generator (32 in
// flight, 1 s rounds, order reversed every round); server CPU and minor page faults per request
// come from /proc/<pid>/stat (10 ms ticks: ~1.5 µs a request at these rates); medians.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { median } from '../lib/load.js'
import { startLoadGen } from '../lib/server-hosts.js'

const arms = (process.argv[2] ?? 'bare,noop,als,import,ballast:7,mesh,weft').split(',')
const rounds = Number(process.argv[3] ?? 10)
const TICK_MICROS = 10_000
const BODY = '{"id":"42"}'

function stat(pid: number): { cpuMicros: number; faults: number } {
  // Fields after the command name: state is [0], minflt [7], utime [11], stime [12].
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return { cpuMicros: (Number(f[11]) + Number(f[12])) * TICK_MICROS, faults: Number(f[7]) }
}

function startArm(arm: string): Promise<{ pid: number; origin: string; heapMb?: number; stop(): void }> {
  const app = fileURLToPath(new URL('./express-app.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', app, arm], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`arm ${arm} exited (${code})`)))
    child.stdout!.once('data', (d: Buffer) => resolve({ pid: child.pid!, origin: `http://127.0.0.1:${String(d).trim()}`, stop: () => void child.kill() }))
  })
}

const apps = await Promise.all(arms.map(startArm))
const load = await startLoadGen()
try {
  for (const a of apps) await load.closed(a.origin, '/users/42', BODY, 2_000, 32)
  const seen = Object.fromEntries(arms.map((a) => [a, [] as { rps: number; cpu: number; faults: number }[]]))
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 ? [...arms.keys()].reverse() : [...arms.keys()]) {
      const app = apps[i]!
      const s0 = stat(app.pid)
      const c = await load.closed(app.origin, '/users/42', BODY, 1_000, 32)
      const s1 = stat(app.pid)
      if (c.errors > 0) throw new Error(`${arms[i]}: ${c.errors} failed requests; first: ${String(c.firstError)}`)
      seen[arms[i]!]!.push({ rps: c.requests / c.seconds, cpu: (s1.cpuMicros - s0.cpuMicros) / c.requests, faults: (s1.faults - s0.faults) / c.requests })
    }
  }
  const base = seen[arms[0]!]!
  const baseRps = median(base.map((x) => x.rps))
  const baseCpu = median(base.map((x) => x.cpu))
  console.log(`| arm | req/s | ratio | server CPU / req | added | minor page faults / req |\n| --- | --- | --- | --- | --- | --- |`)
  for (const a of arms) {
    const xs = seen[a]!
    const rps = median(xs.map((x) => x.rps))
    const cpu = median(xs.map((x) => x.cpu))
    console.log(`| ${a} | ${Math.round(rps)} | ${(rps / baseRps).toFixed(3)}× | ${cpu.toFixed(1)} µs | ${a === arms[0] ? '—' : `${cpu - baseCpu >= 0 ? '+' : '−'}${Math.abs(cpu - baseCpu).toFixed(1)} µs`} | ${median(xs.map((x) => x.faults)).toFixed(2)} |`)
  }
} finally {
  load.stop()
  for (const a of apps) a.stop()
}
process.exit(0)
