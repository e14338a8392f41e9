// One service of bench/memory.ts in its own process (`--arm bare|weft --upstream PORT`): a node:http
// app whose one route, GET /work, calls a small upstream and answers with its body — so both the
// mesh's server half and its client half are in use. bare: plain node:http and an undici Pool;
// weft: the same handler behind `mesh.listen`, calling out through `mesh.request` (default layers).
// Forked with IPC (and --expose-gc): sends { port }; answers { mem: true } with
// process.memoryUsage() after full GCs; exits when the main process goes away.
import http from 'node:http'
import { Pool } from 'undici'
import type * as Weft from '../../src/index.js'

// The mesh under test is the built package (dist/), as in the other scenarios; `npm run bench` builds first.
const distEntry = '../../dist/index.js'
const arg = (name: string) => process.argv[process.argv.indexOf(name) + 1]
const arm = arg('--arm')
const upstream = Number(arg('--upstream'))
const KEEP_ALIVE_MS = 60_000

/** The outbound call: GET /ok on the upstream; its status and body. */
type Call = () => Promise<{ status: number; body: string }>

function app(call: Call): http.RequestListener {
  return (req, res) => {
    if (req.method !== 'GET' || req.url !== '/work') {
      res.writeHead(404, { 'content-length': 0 })
      res.end()
      return
    }
    call().then(
      (r) => {
        res.writeHead(r.status === 200 ? 200 : 502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(r.body) })
        res.end(r.body)
      },
      (err: unknown) => {
        const body = String((err as Error)?.message ?? err)
        res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      },
    )
  }
}

async function start(): Promise<number> {
  if (arm === 'bare') {
    const pool = new Pool(`http://127.0.0.1:${upstream}`, { keepAliveTimeout: 10_000, connectTimeout: 5_000 }) // the mesh's pool options
    const call: Call = async () => {
      const r = await pool.request({ method: 'GET', path: '/ok' })
      return { status: r.statusCode, body: await r.body.text() }
    }
    const server = http.createServer(app(call))
    server.keepAliveTimeout = KEEP_ALIVE_MS
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
    })
  }
  if (arm !== 'weft') throw new Error(`no arm "${arm}" (have: bare, weft)`)
  const { createMesh } = (await import(distEntry)) as typeof Weft
  const mesh = await createMesh({
    service: 'memory-bench',
    logger: { info() {}, warn() {}, error() {} },
    config: [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'upstream' }, spec: { endpoints: [{ address: `127.0.0.1:${upstream}` }] } }],
  })
  const call: Call = async () => {
    const r = await mesh.request('http://upstream/ok')
    return { status: r.statusCode, body: await r.body.text() }
  }
  const server = http.createServer(app(call))
  server.keepAliveTimeout = KEEP_ALIVE_MS
  return (await mesh.listen(server, { port: 0, host: '127.0.0.1', route: (req) => (req.url === '/work' ? '/work' : '') })).port
}

const port = await start()
process.on('message', (m: { mem?: boolean }) => {
  if (!m.mem) return
  // Two full GCs: the second collects what the first only finalized (weak references, closed sockets).
  globalThis.gc?.()
  globalThis.gc?.()
  process.send!({ mem: process.memoryUsage() })
})
process.on('disconnect', () => process.exit(0))
process.send!({ port })
