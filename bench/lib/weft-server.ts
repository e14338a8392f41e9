// The meshed server of the sidecar bench, in its own process: the same node:http app as
// lib/upstream.ts (200 `ok`, keep-alive), served through `mesh.listen` by a mesh for `--service`
// under the bench daemon (mTLS STRICT from the policy; an AuthorizationPolicy when one names it).
// Forked with IPC (sidecar-kit.ts) with `--service S --control URL --token T`: sends { port } once
// listening, answers 'cpu' with { cpu, plaintext, connections }, closes its mesh and exits when the parent goes away.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type * as Weft from '../../src/index.js'

const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1]!
const silent = { info() {}, warn() {}, error() {} }
const BODY = Buffer.from('ok')
const HEADERS = { 'content-type': 'text/plain', 'content-length': BODY.length }
/** Requests that reached the app over a plaintext socket: must stay 0 under STRICT. */
let plaintext = 0
/** Connections node:http was handed: each one passed a full mTLS handshake (Weft never resumes). */
let connections = 0

// Should the bench go away while the mesh starts, nothing else would end this process.
const orphaned = () => process.exit(0)
process.once('disconnect', orphaned)

// The mesh under test is the built package (dist/), as in the other benches.
const distEntry = '../../dist/index.js'
const { createMesh } = (await import(distEntry)) as typeof Weft
// Every default layer on, load shedding included, with one change: it sheds only past a 2 s stall
// (default 200 ms). On a shared 2-core VM this process is now and then left off the CPU for more
// than 200 ms, the mesh then answers 503 for a while — the layer working as meant, but nginx has no
// such layer and the run would fail on it. Its per-request cost does not depend on the threshold.
const mesh = await createMesh({
  service: arg('--service'),
  control: arg('--control'),
  token: arg('--token'),
  logger: silent,
  inbound: { shedding: { maxEventLoopDelayMs: 2_000 } },
})
const server = http.createServer((req, res) => {
  if (!(req.socket as { encrypted?: boolean }).encrypted) plaintext++
  res.writeHead(200, HEADERS)
  res.end(BODY)
})
server.on('connection', () => connections++)
server.keepAliveTimeout = 60_000
server.headersTimeout = 65_000
const { port } = (await mesh.listen(server, { port: 0, host: '127.0.0.1' })) as AddressInfo
if (mesh.identity.serverMode() !== 'STRICT') throw new Error(`${mesh.service} serves in mode ${mesh.identity.serverMode()}, expected STRICT`)

process.on('message', (msg) => {
  if (msg === 'cpu' && process.connected) process.send!({ cpu: process.cpuUsage(), plaintext, connections })
})
process.off('disconnect', orphaned)
process.on('disconnect', () => void mesh.close().finally(() => process.exit(0)))
process.send!({ port })
