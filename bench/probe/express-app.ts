// One Express 5 app for bench/probe/express-floor.ts, in a process of its own; prints its port.
// argv: <arm>. Every arm serves GET /users/:id with res.json; they differ only in what else the
// process holds or runs per request:
//   bare       nothing else
//   noop       one middleware that calls next()
//   als        one middleware that runs the rest of the app inside an AsyncLocalStorage
//   import     `import 'weft'` (the package and its dependencies loaded; no mesh) + noop
//   ballast:N  N MB of plain long-lived objects on the heap + noop
//   mesh       createMesh() (no middleware on the app) + noop
//   weft       createMesh() + app.use(weft(mesh)): what http-server.ts measures
import http from 'node:http'
import { AsyncLocalStorage } from 'node:async_hooks'
import express from 'express'

const arm = process.argv[2] ?? 'bare'
const app = express()
const noop: express.RequestHandler = (_req, _res, next) => next()
const dist = (file: string) => new URL(`../../dist/${file}`, import.meta.url).href
const silent = { info() {}, warn() {}, error() {} }

if (arm === 'noop') app.use(noop)
if (arm === 'als') {
  const als = new AsyncLocalStorage<object>()
  const store = {}
  app.use((_req, _res, next) => als.run(store, next))
}
if (arm === 'import') {
  await import(dist('index.js'))
  app.use(noop)
}
if (arm.startsWith('ballast:')) {
  // ~185 bytes an entry (measured with gc() around it): N MB of small objects that live as long as the process.
  const entries = Math.round((Number(arm.slice(8)) * 1e6) / 185)
  ;(globalThis as { ballast?: unknown }).ballast = Array.from({ length: entries }, (_, i) => ({ a: i, b: `x${i}`, c: [i, i + 1], d: { e: i } }))
  app.use(noop)
}
if (arm === 'mesh' || arm === 'weft') {
  const { createMesh } = (await import(dist('index.js'))) as typeof import('../../src/index.js')
  const mesh = await createMesh({ service: 'users', logger: silent })
  if (arm === 'weft') app.use(((await import(dist('express.js'))) as typeof import('../../adapters/express/index.js')).weft(mesh))
  else app.use(noop)
}
app.get('/users/:id', (req, res) => void res.json({ id: req.params.id }))
const server = http.createServer(app)
server.keepAliveTimeout = 60_000
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
console.log((server.address() as { port: number }).port)
