// One server app of bench/http-server.ts in its own process (`--app NAME`): node:http, Express 5 or Fastify 5, bare or served through the mesh.
import http from 'node:http'
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import v8 from 'node:v8'
import express from 'express'
import Fastify from 'fastify'
import type * as Weft from '../../src/index.js'
import type * as WeftExpress from '../../adapters/express/index.js'
import type * as WeftFastify from '../../adapters/fastify/index.js'

// The mesh under test is the built package (dist/), as in http-client.ts; `npm run bench` builds first.
const dist = { index: '../../dist/index.js', express: '../../dist/express.js', fastify: '../../dist/fastify.js' }
const silent = { info() {}, warn() {}, error() {} }
const KEEP_ALIVE_MS = 60_000
/** The one route: GET /users/:id answers {"id":"<id>"}. */
const USER = /^\/users\/([^/?]+)$/

/** A mesh for the server side, default inbound options (shedding on with its defaults, metrics on, health paths on the app). */
async function serverMesh(): Promise<Weft.Mesh> {
  const { createMesh } = (await import(dist.index)) as typeof Weft
  return createMesh({ service: 'users', logger: silent })
}

function nodeHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = req.method === 'GET' ? USER.exec(req.url ?? '/') : null
  if (!m) {
    res.writeHead(404, { 'content-length': 0 })
    res.end()
    return
  }
  const body = JSON.stringify({ id: m[1] })
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function listenNode(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port))
  })
}

/** Starts the app on 127.0.0.1 and returns its port. */
async function start(app: string): Promise<number> {
  switch (app) {
    case 'node':
    case 'node-weft': {
      const server = http.createServer(nodeHandler)
      server.keepAliveTimeout = KEEP_ALIVE_MS
      if (app === 'node') return listenNode(server)
      const mesh = await serverMesh()
      const route = (req: http.IncomingMessage) => (USER.test(req.url ?? '/') ? '/users/:id' : '')
      return (await mesh.listen(server, { port: 0, host: '127.0.0.1', route })).port
    }
    case 'express':
    case 'express-weft': {
      const e = express()
      const mesh = app === 'express-weft' ? await serverMesh() : undefined
      if (mesh) e.use(((await import(dist.express)) as typeof WeftExpress).weft(mesh))
      e.get('/users/:id', (req, res) => void res.json({ id: req.params.id }))
      const server = http.createServer(e)
      server.keepAliveTimeout = KEEP_ALIVE_MS
      return listenNode(server)
    }
    case 'fastify':
    case 'fastify-weft': {
      const f = Fastify({ keepAliveTimeout: KEEP_ALIVE_MS })
      const mesh = app === 'fastify-weft' ? await serverMesh() : undefined
      if (mesh) await f.register(((await import(dist.fastify)) as typeof WeftFastify).weftPlugin, { mesh })
      f.get<{ Params: { id: string } }>('/users/:id', async (req) => ({ id: req.params.id }))
      await f.listen({ port: 0, host: '127.0.0.1' })
      return (f.server.address() as { port: number }).port
    }
    default:
      throw new Error(`no app "${app}"`)
  }
}

type Command = { op: 'cpu'; gc?: boolean } | { op: 'heap' } | { op: 'profile-start' } | { op: 'profile-stop'; file: string }

// Forked with IPC by startApp (server-hosts.ts): sends { port }, answers commands, exits when the parent goes away.
const port = await start(process.argv[process.argv.indexOf('--app') + 1] ?? '')
let session: Session | undefined
process.on('message', (cmd: Command) => {
  void (async () => {
    if (cmd.op === 'cpu') {
      // A full GC before a measured run (with --expose-gc) so no run inherits the last one's garbage.
      if (cmd.gc) (globalThis as { gc?: () => void }).gc?.()
      return { cpu: process.cpuUsage(), faults: process.resourceUsage().minorPageFault }
    }
    if (cmd.op === 'heap') {
      // What stays on the heap after a full GC: the app, its modules and (behind Weft) the mesh.
      ;(globalThis as { gc?: () => void }).gc?.()
      return { heap: v8.getHeapStatistics().used_heap_size }
    }
    if (cmd.op === 'profile-start') {
      session = new Session()
      session.connect()
      await session.post('Profiler.enable')
      await session.post('Profiler.setSamplingInterval', { interval: 250 })
      await session.post('Profiler.start')
      return { profiling: true }
    }
    const { profile } = await session!.post('Profiler.stop')
    writeFileSync(cmd.file, JSON.stringify(profile))
    session!.disconnect()
    return { profiled: true }
  })().then(
    (reply) => process.send!(reply),
    (err: unknown) => process.send!({ error: String((err as Error)?.stack ?? err) }),
  )
})
process.on('disconnect', () => process.exit(0))
process.send!({ port })
