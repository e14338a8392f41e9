// RELIABILITY L8, the cardinality half: metric series stay bounded whatever callers send. 100,000
// requests with distinct raw paths through a mesh client to a mesh-served node:http server give
// series for the route templates and route names only (plus one label for "no route"), never a raw
// path; and the caller names a plaintext client claims in weft-caller (an untrusted header) fill at
// most 64 source_service values before the rest share "_other". Real servers on loopback; bounded
// in count, stops by itself.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test } from 'node:test'
import { Pool } from 'undici'
import { createMesh } from '../../src/index.js'
import { silentLogger } from '../../src/util/logger.js'
import { route, service } from '../helpers/mesh.js'

const REQUESTS = 100_000
const IN_FLIGHT = 64
const USER = /^\/users\/\d+(\?|$)/

/** The label sets of one metric's `_count` series in Prometheus text. */
function series(text: string, metric: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${metric}_count{`)).map((l) => l.slice(metric.length + 7, l.lastIndexOf('}')))
}

/** Runs `send(i)` for i in [0, n) with `IN_FLIGHT` at a time. */
async function drive(n: number, send: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < n) await send(next++)
  }))
}

test(`${REQUESTS.toLocaleString('en')} distinct raw paths make series only for route templates and route names; weft-caller claims are capped at 64 source_service values`, async (t) => {
  const server = http.createServer((req, res) => {
    const found = USER.test(req.url ?? '')
    res.writeHead(found ? 200 : 404, { 'content-type': 'text/plain' })
    res.end(found ? 'user' : 'none')
  })
  const users = await createMesh({ service: 'users', logger: silentLogger })
  t.after(() => users.close())
  const { port } = (await users.listen(server, { port: 0, host: '127.0.0.1', route: (req) => (USER.test(req.url ?? '') ? '/users/:id' : '') })) as AddressInfo

  const checkout = await createMesh({
    service: 'checkout',
    logger: silentLogger,
    config: [
      service('users', { endpoints: [{ address: `127.0.0.1:${port}` }] }),
      route('users', { service: 'users', rules: [{ name: 'profiles', matches: [{ path: { prefix: '/users/' } }], backends: [{}] }, { name: 'rest', backends: [{}] }] }),
    ],
  })
  t.after(() => checkout.close())

  // Half the paths match the template, half match nothing; every one is distinct.
  await drive(REQUESTS, async (i) => {
    const r = await checkout.request(`http://users/${i % 2 ? 'users' : `x${i}`}/${i}?q=${i}`)
    await r.body.dump()
  })

  const server_ = series(await users.metrics(), 'http_server_request_duration_seconds')
  const client = series(await checkout.metrics(), 'http_client_request_duration_seconds')
  assert.ok(server_.length > 0 && client.length > 0)
  const rawPath = /\/users\/\d|\/x\d/
  assert.deepEqual(server_.filter((s) => rawPath.test(s)), [], 'no raw path in a server label')
  assert.deepEqual(client.filter((s) => rawPath.test(s)), [], 'no raw path in a client label')
  assert.deepEqual([...new Set(server_.map((s) => /http_route="([^"]*)"/.exec(s)![1]))].sort(), ['', '/users/:id'], 'server: the template, and "" for no route')
  assert.deepEqual([...new Set(client.map((s) => /route="([^"]*)"/.exec(s)![1]))].sort(), ['profiles', 'rest'], 'client: the route rules\' names')
  assert.ok(server_.length <= 4, `server series: ${server_.join('\n')}`)
  assert.ok(client.length <= 4, `client series: ${client.join('\n')}`)

  // A plaintext client claiming 1,000 different callers: at most 64 names, then "_other".
  const pool = new Pool(`http://127.0.0.1:${port}`)
  t.after(() => pool.close())
  await drive(1_000, async (i) => {
    const r = await pool.request({ method: 'GET', path: `/users/${i}`, headers: { 'weft-caller': `caller-${i}` } })
    await r.body.dump()
  })
  const sources = new Set(series(await users.metrics(), 'http_server_request_duration_seconds').map((s) => /source_service="([^"]*)"/.exec(s)![1]))
  assert.ok(sources.has('_other'), [...sources].join(', '))
  assert.ok(sources.size <= 64 + 2, `${sources.size} source_service values: the cap plus "_other" (and "checkout" before it)`)
})
