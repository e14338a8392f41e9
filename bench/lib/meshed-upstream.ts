// The overhead bench's server, in its own process: the same node:http app as lib/upstream.ts (200
// `ok`, keep-alive) behind `mesh.listen`, every default inbound layer on, with two
// AuthorizationPolicies for it to evaluate on each request (DENY /admin/*, ALLOW GET /api/*) and
// its metrics on. No daemon: the policy is the embedded default.
// Forked with IPC: sends { port } once listening; answers 'cpu' with { cpu }, 'elu' with { elu }
// (cumulative event-loop idle/active ms), { profile: 'start' } and { profile: 'stop', file } (a V8
// CPU profile of this process, written to file) with { profiled: true }; exits when the parent goes away.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { startCpuProfile } from './cpu-profiler.js'
import type * as Weft from '../../src/index.js'

const silent = { info() {}, warn() {}, error() {} }
const BODY = Buffer.from('ok')
const HEADERS = { 'content-type': 'text/plain', 'content-length': BODY.length }

const orphaned = () => process.exit(0)
process.once('disconnect', orphaned)

// The built package (dist/), as in the other benches.
const distEntry = '../../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
const authz = (name: string, action: 'ALLOW' | 'DENY', to: { methods?: string[]; paths: string[] }) => ({
  apiVersion: 'weft/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name },
  spec: { service: 'bench', action, rules: [{ to: [to] }] },
})
// Shedding only past a 2 s stall (default 200 ms), as in lib/weft-server.ts: this shared 2-core VM
// now and then leaves a process off the CPU for longer, and a shed answer would fail the run.
const mesh = await createMesh({
  service: 'bench',
  logger: silent,
  inbound: { shedding: { maxEventLoopDelayMs: 2_000 } },
  config: [authz('deny-admin', 'DENY', { paths: ['/admin', '/admin/*'] }), authz('allow-api', 'ALLOW', { methods: ['GET'], paths: ['/api/*'] })],
})
const server = http.createServer((_req, res) => {
  res.writeHead(200, HEADERS)
  res.end(BODY)
})
server.keepAliveTimeout = 60_000
server.headersTimeout = 65_000
const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo

let stopProfile: ((file: string) => Promise<void>) | undefined
process.on('message', (msg: unknown) => {
  if (msg === 'cpu') return void process.send!({ cpu: process.cpuUsage() })
  if (msg === 'elu') {
    const { idle, active } = performance.eventLoopUtilization()
    return void process.send!({ elu: { idle, active } })
  }
  const m = msg as { profile?: 'start' | 'stop'; file?: string }
  if (m.profile === 'start') {
    void startCpuProfile().then((stop) => {
      stopProfile = stop
      process.send!({ profiled: true })
    })
  } else if (m.profile === 'stop' && stopProfile) {
    const stop = stopProfile
    stopProfile = undefined
    void stop(m.file!).then(() => process.send!({ profiled: true }))
  }
})
process.off('disconnect', orphaned)
process.on('disconnect', () => void mesh.close().finally(() => process.exit(0)))
process.send!({ port })
