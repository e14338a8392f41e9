// A server counted by bench/instr/main.ts under valgrind (plain node, no tsx, so only the server's
// own work is counted): serves GET /users/:id until `count` requests are answered, then exits.
// argv: <arm> <count>; prints "PORT <n>" once listening. Arms: node, node-weft, express, express-weft.
import http from 'node:http'

const [arm, countArg] = process.argv.slice(2)
const count = Number(countArg)
const USER = /^\/users\/([^/?]+)$/
const quiet = { info() {}, warn: console.error, error: console.error }
let served = 0
const answered = () => {
  if (++served === count) setTimeout(() => process.exit(0), 50)
}

/**
 * Event-loop shedding off: under valgrind every turn of the loop is ~50x slower, which the load
 * monitor would read as a blocked loop and shed. Its per-request cost (one field read) stays; its
 * timer work is counted at valgrind's pace, so over-weighted per request.
 */
async function mesh() {
  const { createMesh } = await import('../../dist/index.js')
  return createMesh({ service: 'users', logger: quiet, inbound: { shedding: false } })
}

function nodeHandler(req, res) {
  const m = USER.exec(req.url ?? '/')
  const body = JSON.stringify({ id: m ? m[1] : '' })
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) })
  res.end(body)
  answered()
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))
}

async function start() {
  if (arm === 'node' || arm === 'node-weft') {
    const server = http.createServer(nodeHandler)
    server.keepAliveTimeout = 60_000
    if (arm === 'node') return listen(server)
    const m = await mesh()
    return (await m.listen(server, { port: 0, host: '127.0.0.1', route: () => '/users/:id' })).port
  }
  if (arm === 'express' || arm === 'express-weft') {
    const express = (await import('express')).default
    const app = express()
    if (arm === 'express-weft') app.use((await import('../../dist/express.js')).weft(await mesh()))
    app.get('/users/:id', (req, res) => {
      res.json({ id: req.params.id })
      answered()
    })
    const server = http.createServer(app)
    server.keepAliveTimeout = 60_000
    return listen(server)
  }
  throw new Error(`no server arm "${arm}"`)
}

console.log(`PORT ${await start()}`)
