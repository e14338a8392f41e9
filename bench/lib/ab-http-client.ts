// A/B by hand: alternating closed-loop rounds (32 in flight, 1 s) of http-client.ts arms, each in a
// process of its own against one upstream, medians. Not part of `npm run bench`.
// Usage: node --expose-gc --import tsx bench/lib/ab-http-client.ts raw,raw-md,mesh [rounds=10]
// (the first arm is the baseline; `npx tsup` first: the mesh arms use dist/).
import { fileURLToPath } from 'node:url'
import { forkArm } from './arm.js'
import { startUpstream, median } from './load.js'
const FILE = fileURLToPath(new URL('../http-client.ts', import.meta.url))
const arms = process.argv[2]!.split(',')
if (!process.argv[2]) throw new Error('usage: ab-http-client.ts ARM,ARM[,...] [rounds]')
const rounds = Number(process.argv[3] ?? 10)
const up = await startUpstream(4)
const hosts = await Promise.all(arms.map((a) => forkArm(FILE, a, ['--ports', up.ports.join(',')])))
for (const h of hosts) await h.closed(800, 32)
const res: Record<string, { rps: number; cpu: number; srv: number }[]> = Object.fromEntries(arms.map((a) => [a, []]))
for (let r = 0; r < rounds; r++) {
  const order = r % 2 ? [...arms.keys()].reverse() : [...arms.keys()]
  for (const i of order) {
    const s0 = await up.cpuMicros()
    const c = await hosts[i]!.closed(1000, 32)
    const srv = (await up.cpuMicros()) - s0
    res[arms[i]!]!.push({ rps: c.requests / c.seconds, cpu: c.cpuMicros / c.requests, srv: srv / c.requests })
  }
}
const base = median(res[arms[0]!]!.map((x) => x.rps)), basecpu = median(res[arms[0]!]!.map((x) => x.cpu))
for (const a of arms) {
  const rps = median(res[a]!.map((x) => x.rps)), cpu = median(res[a]!.map((x) => x.cpu)), srv = median(res[a]!.map((x) => x.srv))
  console.log(`${a.padEnd(10)} ${Math.round(rps)} req/s  ${(rps / base).toFixed(3)}x  client ${cpu.toFixed(1)} µs (+${(cpu - basecpu).toFixed(1)})  server ${srv.toFixed(1)} µs`)
}
for (const h of hosts) h.stop()
up.stop()
process.exit(0)
