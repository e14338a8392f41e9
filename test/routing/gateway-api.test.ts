// Gateway API routes in the mesh profile (GAMMA), loaded from YAML as the Gateway API docs write
// them and translated into Weft Routes (config/translate): run against real node:http and grpc-js
// servers, the split, the header match, PathPrefix's whole-segment rule, the mirror, the request
// timeout and GRPCRoute's method match all hold.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { isWeftError, type Mesh } from '../../src/index.js'
import { eventually } from '../helpers/daemon.js'
import { metricValue, quietMesh } from '../helpers/mesh.js'
import { ok, startUpstream, type Upstream } from '../helpers/upstream.js'
import { get, ledgerImpl, LedgerClient, record, startLedger, type Ledger } from '../helpers/grpc-kit.js'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/translate/${name}`, import.meta.url), 'utf8')
const dir = mkdtempSync(join(tmpdir(), 'weft-gateway-'))
const serviceYaml = (name: string, address: string, protocol = 'http') =>
  `apiVersion: weft/v1\nkind: Service\nmetadata: { name: ${name} }\nspec: { protocol: ${protocol}, retries: { attempts: 0 }, endpoints: [{ address: "${address}" }] }\n---\n`

let payments: Upstream, next: Upstream, shadow: Upstream
let mesh: Mesh

before(async () => {
  payments = await startUpstream('payments')
  next = await startUpstream('payments-next', (req, res, n) => {
    if (req.url === '/refunds/slow') setTimeout(() => ok('payments-next')(req, res, n), 2000).unref()
    else ok('payments-next')(req, res, n)
  })
  shadow = await startUpstream('payments-shadow')
  const file = join(dir, 'mesh.yaml')
  writeFileSync(file, serviceYaml('payments', payments.address) + serviceYaml('payments-next', next.address) +
    serviceYaml('payments-shadow', shadow.address) + fixture('httproute-gamma.yaml'))
  mesh = await quietMesh(file)
})
after(async () => {
  await mesh.close()
  for (const u of [payments, next, shadow]) await u.close()
  rmSync(dir, { recursive: true, force: true })
})

const served = async (path: string, headers: Record<string, string> = {}) => {
  const res = await mesh.request(`http://payments${path}`, { headers })
  assert.equal(res.statusCode, 200)
  return res.body.text()
}

test('HTTPRoute: the backendRefs split 90/10 holds over 2,000 calls, measured under the Gateway rule\'s name', async () => {
  let toNext = 0
  for (let batch = 0; batch < 40; batch++) {
    const got = await Promise.all(Array.from({ length: 50 }, () => served('/charge')))
    toNext += got.filter((b) => b === 'ok from payments-next').length
  }
  // 2,000 draws at p = 0.1: mean 200, sd ~13.4; ±5 sd.
  assert.ok(toNext >= 133 && toNext <= 267, `payments-next served ${toNext}`)
  assert.equal(metricValue(await mesh.metrics(), 'http_client_request_duration_seconds_count', { route: 'payments-canary#2' }), 2000)
})

test('HTTPRoute: a header match sends every matching call to its backend', async () => {
  for (let i = 0; i < 20; i++) assert.equal(await served('/charge', { 'X-Canary': 'always' }), 'ok from payments-next')
})

test('HTTPRoute: PathPrefix matches whole segments (/refunds and /refunds/1, never /refundsX), and its RequestMirror copies each call', async () => {
  const mirrored = shadow.hits
  assert.equal(await served('/refunds'), 'ok from payments-next')
  assert.equal(await served('/refunds/1'), 'ok from payments-next')
  await eventually(async () => shadow.hits === mirrored + 2, 5000, 'both calls mirrored to payments-shadow')
  // A mirrored copy's Host is "<service>-shadow", as Istio's (routing/mirror-layer.ts).
  assert.equal(shadow.seen.at(-1)!.headers.host, 'payments-shadow-shadow')
  // /refundsX is not under /refunds: the split rule takes it (20 calls all at p = 0.1: 1e-20).
  const got = await Promise.all(Array.from({ length: 20 }, () => served('/refundsX')))
  assert.ok(got.includes('ok from payments'), got.join(','))
  assert.equal(shadow.hits, mirrored + 2, 'only the /refunds rule mirrors')
})

test('HTTPRoute: timeouts.request is the rule\'s timeout; the failure names the Gateway rule', async () => {
  const err = await mesh.request('http://payments/refunds/slow').catch((e: unknown) => e)
  assert.ok(isWeftError(err, 'WEFT_ERR_DEADLINE_EXCEEDED'), String(err))
  assert.equal(err.details.route, 'payments-canary#1')
})

test('GRPCRoute: a method match sends Get to ledger-v2 and every other method to ledger', async (t) => {
  const v1 = await startLedger(ledgerImpl('ledger'))
  const v2 = await startLedger(ledgerImpl('ledger-v2'))
  t.after(() => {
    v1.server.forceShutdown()
    v2.server.forceShutdown()
  })
  const file = join(dir, 'grpc.yaml')
  writeFileSync(file, serviceYaml('ledger', v1.address, 'grpc') + serviceYaml('ledger-v2', v2.address, 'grpc') + fixture('grpcroute-gamma.yaml'))
  const m = await quietMesh(file)
  const client = m.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  t.after(async () => {
    client.close()
    await m.close()
  })
  for (let i = 0; i < 5; i++) assert.equal((await get(client, { id: `a${i}` })).from, 'ledger-v2')
  assert.equal((await record(client, 2)).from, 'ledger', 'Record is not Get: the second rule')
})
