// RELIABILITY L5, HTTP side, bounded: many requests through a mesh where every request is a new
// connection (the upstream answers `connection: close`), and a Service whose endpoint is replaced
// on every config version (each version's pool closed, the next request opening a new one). After
// a forced GC, open sockets are back to the baseline ±5 and heapUsed within +10% or +2 MB of it,
// whichever is larger. The baseline is taken after a warm-up batch (JIT, module caches, metric
// series in). Counts can be raised with WEFT_L5_HTTP_REQUESTS / WEFT_L5_HTTP_VERSIONS (the full
// L5 run is 1M requests). No timing assertions; the numbers are printed as test diagnostics.
import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { test, type TestContext } from 'node:test'
import { createMesh, type Mesh } from '../../src/index.js'
import { service } from '../helpers/mesh.js'
import { assertBackToBaseline, heapLimit, mb, sample, socketsSettle, socketsSteady, type Sample } from '../helpers/leak-probe.js'

const REQUESTS = Number(process.env.WEFT_L5_HTTP_REQUESTS ?? 20_000)
const VERSIONS = Number(process.env.WEFT_L5_HTTP_VERSIONS ?? 300)
const quiet = { info() {}, warn() {}, error() {} }

/** A bare upstream that keeps nothing per request (startUpstream records every request it sees). */
async function upstream(t: TestContext, close: boolean): Promise<{ address: string; served: () => number }> {
  let served = 0
  const server = http.createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      served++
      if (close) res.setHeader('connection', 'close')
      res.end('ok')
    })
  })
  // Idle keep-alive connections stay open on the server side: only the mesh closing them ends them
  // within the test (node's default 5 s would hide a pool left open).
  server.keepAliveTimeout = 120_000
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => {
    server.closeAllConnections()
    server.close(() => r())
  }))
  return { address: `127.0.0.1:${(server.address() as AddressInfo).port}`, served: () => served }
}

/** `n` GETs to http://payments/ through the mesh, `concurrency` at a time; resolves with the failures. */
async function drive(mesh: Mesh, n: number, concurrency: number): Promise<number> {
  let next = 0
  let failed = 0
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++
      try {
        const res = await mesh.request('http://payments/x')
        const body = await res.body.text()
        if (res.statusCode !== 200 || body !== 'ok') failed++
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return failed
}

function report(t: TestContext, what: string, base: Sample, end: Sample): void {
  t.diagnostic(`${what}: sockets ${base.sockets} -> ${end.sockets}; heapUsed ${mb(base.heapUsed)} -> ${mb(end.heapUsed)} (limit ${mb(heapLimit(base.heapUsed))}); rss ${mb(base.rss)} -> ${mb(end.rss)}`)
  t.diagnostic(`${what}: active resources ${JSON.stringify(base.resources)} -> ${JSON.stringify(end.resources)}`)
}

test(`${REQUESTS} HTTP requests, each on a new connection: sockets, heap and handles back to baseline after GC`, async (t) => {
  const up = await upstream(t, true)
  const mesh = await createMesh({ service: 'checkout', logger: quiet, config: [service('payments', { endpoints: [{ address: up.address }] })] })
  t.after(() => mesh.close())

  // Warm-up: JIT, the pool, metric series, undici's and the mesh's lazily made state.
  assert.equal(await drive(mesh, 2_000, 8), 0)
  await socketsSteady()
  const base = await sample()

  assert.equal(await drive(mesh, REQUESTS, 8), 0, 'every request answered')
  assert.ok(up.served() >= 2_000 + REQUESTS)
  // Each connection is closed by the upstream after its one response; wait until they are gone.
  await socketsSettle(base.sockets, 5_000)
  const end = await sample()
  report(t, `${REQUESTS} new-connection requests`, base, end)
  assertBackToBaseline(base, end)
})

test(`a Service whose endpoint changes on each of ${VERSIONS} config versions: each old pool closes, sockets and heap back to baseline`, async (t) => {
  // Keep-alive upstream: connections stay open until the mesh closes the endpoint's pool, which it
  // must do when a config version removes the endpoint. The endpoint's label changes each version,
  // so it is a new endpoint (a new pool) each time, at one of two addresses in turn.
  const ups = [await upstream(t, false), await upstream(t, false)]
  const config: Record<string, unknown>[] = [service('payments', { endpoints: [{ address: ups[0]!.address, labels: { gen: '0' } }] })]
  const mesh = await createMesh({ service: 'checkout', logger: quiet, config })
  t.after(() => mesh.close())
  let gen = 0
  const nextVersion = async (): Promise<void> => {
    gen++
    config[0] = service('payments', { endpoints: [{ address: ups[gen % 2]!.address, labels: { gen: String(gen) } }] })
    await mesh.reload()
  }
  const churn = async (versions: number): Promise<void> => {
    for (let i = 0; i < versions; i++) {
      await nextVersion()
      assert.equal(await drive(mesh, 20, 4), 0)
    }
    // Measure where no pool has connections: just after a version that replaced the endpoint.
    await nextVersion()
  }

  // Warm-up long enough for the JIT to settle (compiled code grows over the first few hundred versions).
  await churn(300)
  await socketsSteady()
  const base = await sample()
  const startVersion = mesh.configVersion

  await churn(VERSIONS)
  assert.equal(mesh.configVersion, startVersion + VERSIONS + 1)
  await socketsSettle(base.sockets, 5_000)
  const end = await sample()
  report(t, `${VERSIONS} endpoint versions`, base, end)
  assertBackToBaseline(base, end)
})
