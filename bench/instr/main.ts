// Instructions per request, counted by valgrind (cachegrind, no cache simulation): raw clients and
// bare servers vs the same through Weft. CPU time on a shared VM swings 2x between runs (2026-12-07);
// an instruction count hardly moves with the neighbours, so a change to the hot path shows in it the
// same day it is made. Not part of `npm run bench` (a run takes ~18 minutes: valgrind runs node ~50x
// slower); `npm run bench:instructions` writes bench/INSTRUCTIONS.md (with `-- --quick`,
// bench/.out/INSTRUCTIONS.quick.md). It lives in bench/instr/, not bench/, because bench/run.ts runs every bench/*.ts as a scenario.
//
// Method: each counted process (bench/instr/server.mjs or client.mjs, plain node, no tsx) runs twice,
// once for N1 and once for N2 requests; (instructions at N2 − at N1) / (N2 − N1) is the figure, so
// start-up, module loading and the JIT's first compilations fall out. Instructions are not time (a
// page fault, a cache miss, a syscall's wait are not in them), and work driven by timers is counted
// at valgrind's pace, ~50x more per request than natively; both arms of a pair share these biases.
import { spawn, execFileSync } from 'node:child_process'
import http from 'node:http'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { table } from '../lib/scenario.js'

const quick = process.argv.includes('--quick')
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))
/** Runs per arm and size; the figure is the median of the runs' slopes. */
const REPEATS = quick ? 1 : 2

interface Arm {
  name: string
  label: string
  side: 'server' | 'client'
  n1: number
  n2: number
}

const sizes = (n1: number, n2: number) => (quick ? { n1: 300, n2: 800 } : { n1, n2 })
const ARMS: Arm[] = [
  { name: 'node', label: 'bare node:http', side: 'server', ...sizes(4_000, 14_000) },
  { name: 'node-weft', label: 'node:http through `mesh.listen`', side: 'server', ...sizes(4_000, 14_000) },
  // Express does ~10x the work of node:http a request, so fewer requests give as steady a slope.
  { name: 'express', label: 'bare Express 5', side: 'server', ...sizes(3_000, 10_000) },
  { name: 'express-weft', label: 'Express 5 + `app.use(weft(mesh))`', side: 'server', ...sizes(3_000, 10_000) },
  { name: 'raw', label: 'raw undici `Pool.request`', side: 'client', ...sizes(4_000, 14_000) },
  { name: 'raw-md', label: 'raw undici `Pool.request` sending the mesh\'s headers (`host`, `weft-caller`, `traceparent`, `weft-deadline-ms`)', side: 'client', ...sizes(4_000, 14_000) },
  { name: 'mesh', label: 'Weft `mesh.request` (every default layer, one endpoint, no Route)', side: 'client', ...sizes(4_000, 14_000) },
]
const PAIRS: [string, string][] = [['node', 'node-weft'], ['express', 'express-weft'], ['raw', 'raw-md'], ['raw', 'mesh'], ['raw-md', 'mesh']]

const VALGRIND = ['--tool=cachegrind', '--cache-sim=no', '--cachegrind-out-file=/dev/null']

/** Instructions valgrind counted for the process, from its summary on stderr. */
function instructionsOf(stderr: string, what: string): number {
  const m = /I\s+refs:\s+([\d,]+)/.exec(stderr)
  if (!m) throw new Error(`${what}: no instruction count in valgrind's output:\n${stderr.slice(-1500)}`)
  return Number(m[1]!.replace(/,/g, ''))
}

/** Starts `args` under valgrind; `done` resolves with its instruction count once it exits. */
function counted(args: string[], what: string, onStdout?: (line: string) => void): { done: Promise<number>; kill(): void } {
  const child = spawn('valgrind', [...VALGRIND, 'node', '--single-threaded', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += String(d)))
  child.stdout.on('data', (d: Buffer) => {
    for (const line of String(d).split('\n')) if (line) onStdout?.(line)
  })
  const done = new Promise<number>((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => (code === 0 ? resolve(instructionsOf(err, what)) : reject(new Error(`${what} exited ${code}:\n${err.slice(-1500)}`))))
  })
  return { done, kill: () => void child.kill('SIGKILL') }
}

/** One counted server: it answers `count` GETs from a native undici Pool (32 in flight) and exits. */
async function countServer(arm: string, count: number): Promise<number> {
  let portSeen!: (port: number) => void
  const port = new Promise<number>((resolve) => (portSeen = resolve))
  const run = counted([here('./server.mjs'), arm, String(count)], `server ${arm}`, (line) => {
    const m = /^PORT (\d+)$/.exec(line)
    if (m) portSeen(Number(m[1]))
  })
  // A server that crashes rejects `done`; one that exits 0 without listening is an error too.
  const p = await Promise.race([port, run.done.then(() => 0)])
  if (p === 0) throw new Error(`server ${arm} exited before listening`)
  const pool = new Pool(`http://127.0.0.1:${p}`, { connections: 32 })
  try {
    let sent = 0
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (sent < count) {
        sent++
        const r = await pool.request({ method: 'GET', path: '/users/42' })
        if (r.statusCode !== 200) throw new Error(`server ${arm}: status ${r.statusCode}`)
        await r.body.text()
      }
    }))
    return await run.done
  } catch (err) {
    // A failed request: no valgrind left running behind the error.
    run.kill()
    throw err
  } finally {
    await pool.destroy()
  }
}

/** One counted client: `count` GETs to a native node:http upstream in this process. */
async function countClient(arm: string, count: number): Promise<number> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': 2 })
    res.end('ok')
  })
  server.keepAliveTimeout = 60_000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  try {
    return await counted([here('./client.mjs'), arm, String(count), String((server.address() as { port: number }).port)], `client ${arm}`).done
  } finally {
    server.closeAllConnections()
    server.close()
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}
const k = (n: number) => `${(n / 1000).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })}k`
const signed = (n: number) => `${n >= 0 ? '+' : '−'}${k(Math.abs(n))}`

async function main(): Promise<void> {
  try {
    execFileSync('valgrind', ['--version'])
  } catch {
    throw new Error('bench/instr/main.ts needs valgrind (apt-get install -y valgrind)')
  }
  const started = new Date()
  const perArm = new Map<string, number[]>()
  for (let r = 0; r < REPEATS; r++) {
    for (const arm of ARMS) {
      const count = arm.side === 'server' ? countServer : countClient
      const i1 = await count(arm.name, arm.n1)
      const i2 = await count(arm.name, arm.n2)
      const slope = (i2 - i1) / (arm.n2 - arm.n1)
      perArm.set(arm.name, [...(perArm.get(arm.name) ?? []), slope])
      console.log(`${arm.name}: ${k(slope)} instructions per request (run ${r + 1})`)
    }
  }
  const fig = (name: string) => median(perArm.get(name)!)
  const label = (name: string) => ARMS.find((a) => a.name === name)!.label
  const rows = ARMS.map((a) => {
    const xs = perArm.get(a.name)!
    return [a.side, a.label, k(fig(a.name)), xs.length > 1 ? `${k(Math.min(...xs))}–${k(Math.max(...xs))}` : '—', `${a.n1.toLocaleString('en-US')} → ${a.n2.toLocaleString('en-US')}`]
  })
  const pairs = PAIRS.map(([base, weft]) => [label(weft), label(base), signed(fig(weft) - fig(base)), `${(fig(weft) / fig(base)).toFixed(3)}×`])
  const cpus = os.cpus()
  const md = [
    `# Instructions per request`,
    ``,
    `Generated by \`npm run bench:instructions${quick ? ' -- --quick' : ''}\` (\`node --import tsx bench/instr/main.ts\`) on ${started.toISOString()} in ${Math.round((Date.now() - started.getTime()) / 1000)} s. Machine: ${cpus.length} cores, ${cpus[0]?.model ?? 'unknown CPU'}; Node ${process.version}; ${String(execFileSync('valgrind', ['--version'])).trim()}.`,
    ``,
    `Each counted process (bench/instr/server.mjs or client.mjs: plain node with \`--single-threaded\`, the built package from dist/) runs under \`valgrind --tool=cachegrind --cache-sim=no\` twice, for N1 and for N2 requests, 32 in flight; the figure is (instructions at N2 − instructions at N1) ÷ (N2 − N1), so start-up, module loading and the first compilations fall out; median of ${REPEATS} such pair(s). The other side of each exchange (a native undici Pool driving a server; a native node:http upstream for a client) runs outside valgrind. Servers answer \`GET /users/42\` with \`{"id":"42"}\`; the meshed servers run with \`inbound.shedding: false\`, since under valgrind the event loop is slow enough to be shed. Instructions are not time: page faults, cache misses and syscall waits are not in them, and work driven by timers (the load monitor's 20 ms probe) is counted at valgrind's pace, ~50× more per request than natively. They are steady where CPU time on a shared VM is not, so a change to the hot path shows in them on the day it is made.`,
    quick ? `\n_--quick run: figures are not meaningful._\n` : ``,
    table(['side', 'arm', 'instructions / request', 'range over runs', 'requests N1 → N2'], rows),
    ``,
    table(['Weft arm', 'against', 'added instructions / request', 'ratio'], pairs),
    ``,
  ].join('\n')
  // A quick run's figures mean nothing: it writes under bench/.out/ (gitignored), never over the committed file.
  const target = quick ? here('../.out/INSTRUCTIONS.quick.md') : here('../INSTRUCTIONS.md')
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, md)
  console.log(md)
  console.error(`bench:instructions: wrote ${target}`)
}

await main()
process.exit(0)
