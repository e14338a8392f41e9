// Route backends that are other Services (Istio's destination host, Gateway API's backendRefs):
// a weighted split across two Services on real node:http servers, each endpoint's pool and
// outlier detection belonging to its own Service.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Mesh } from '../../src/index.js'
import { loadValue } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { composeView } from '../../src/control/compose.js'
import { metricValue, quietMesh, route, service } from '../helpers/mesh.js'
import { startUpstream, status, type Upstream } from '../helpers/upstream.js'

let v1: Upstream, next: Upstream, nextBad: Upstream, nextGood: Upstream
let mesh: Mesh

before(async () => {
  v1 = await startUpstream('payments')
  next = await startUpstream('payments-next')
  nextGood = await startUpstream('canary-good')
  nextBad = await startUpstream('canary-bad', status(500))
  mesh = await quietMesh([
    service('payments', { endpoints: [{ address: v1.address }] }),
    service('payments-next', { endpoints: [{ address: next.address }] }),
    service('canary', { endpoints: [{ address: nextGood.address }, { address: nextBad.address }], outlierDetection: { consecutive5xx: 3 }, loadBalancer: { policy: 'round-robin' } }),
    route('payments', {
      service: 'payments',
      rules: [
        { name: 'to-canary', matches: [{ path: { prefix: '/canary' } }], backends: [{ service: 'canary' }] },
        { name: 'split', backends: [{ weight: 80 }, { service: 'payments-next', weight: 20 }] },
      ],
    }),
  ])
})
after(async () => {
  await mesh.close()
  for (const u of [v1, next, nextGood, nextBad]) await u.close()
})

test('an 80/20 split across two Services holds over 2,000 calls; the other Service\'s server gets its own name as Host; metrics stay the route\'s service', async () => {
  let toNext = 0
  for (let batch = 0; batch < 40; batch++) {
    const got = await Promise.all(Array.from({ length: 50 }, async () => {
      const res = await mesh.request('http://payments/charge')
      assert.equal(res.statusCode, 200)
      return res.body.text()
    }))
    toNext += got.filter((b) => b === 'ok from payments-next').length
  }
  // 2,000 draws at p = 0.2: mean 400, sd ~18; ±5 sd.
  assert.ok(toNext >= 310 && toNext <= 490, `payments-next served ${toNext}`)
  assert.equal(next.hits, toNext)
  assert.equal(next.seen[0]!.headers.host, 'payments-next')
  assert.equal(v1.seen[0]!.headers.host, 'payments')
  const text = await mesh.metrics()
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { route: 'split', destination_service: 'payments' }), 2000)
  assert.equal(metricValue(text, 'http_client_request_duration_seconds_count', { destination_service: 'payments-next' }), 0)
})

test('the other Service\'s endpoints are ejected by that Service\'s outlier detection (its settings, its metric label)', async () => {
  const statuses: number[] = []
  for (let i = 0; i < 20; i++) {
    const res = await mesh.request('http://payments/canary')
    statuses.push(res.statusCode)
    await res.body.dump()
  }
  // Round-robin over good and bad until the bad one's third 500 in a row ejects it (canary's
  // consecutive5xx: 3; payments' own would be the default 5).
  assert.equal(statuses.filter((s) => s === 500).length, 3, statuses.join(','))
  assert.deepEqual(statuses.slice(6), Array(14).fill(200))
  assert.equal(metricValue(await mesh.metrics(), 'weft_endpoint_ejections_total', { destination_service: 'canary', endpoint: nextBad.address }), 1)
})

const issuesOf = (backends: unknown[], extra: object[] = []) => validatePolicy(loadValue([
  service('payments', { endpoints: [{ address: '127.0.0.1:1' }] }),
  ...extra,
  route('payments', { service: 'payments', rules: [{ backends }] }),
])).issues

test('validation: a backend\'s service must exist and speak the route service\'s protocol; its subset is checked against its own endpoints', () => {
  const unknown = issuesOf([{ weight: 1 }, { service: 'nope', weight: 1 }]).find((i) => i.severity === 'error')!
  assert.equal(unknown.path, 'spec.rules[0].backends[1].service')
  assert.equal(unknown.code, 'WEFT_E_REF_UNKNOWN')
  const grpc = issuesOf([{ service: 'ledger' }], [service('ledger', { protocol: 'grpc', endpoints: [{ address: '127.0.0.1:2' }] })]).find((i) => i.severity === 'error')!
  assert.equal(grpc.path, 'spec.rules[0].backends[0].service')
  assert.match(grpc.message, /speaks grpc, the route's service "payments" http/)
  const next = service('payments-next', { endpoints: [{ address: '127.0.0.1:3', labels: { version: 'v2' } }] })
  assert.deepEqual(issuesOf([{ service: 'payments-next', subset: { version: 'v2' } }], [next]), [])
  const empty = issuesOf([{ service: 'payments-next', subset: { version: 'v9' } }], [next])
  assert.equal(empty[0]?.code, 'WEFT_W_SUBSET_EMPTY')
  assert.match(empty[0]!.message, /no endpoint of service "payments-next"/)
  // Naming the route's own service is the same as leaving it out.
  const p = validatePolicy(loadValue([service('payments', { endpoints: [{ address: '127.0.0.1:1' }] }), route('payments', { service: 'payments', rules: [{ backends: [{ service: 'payments' }] }] })]))
  assert.deepEqual(p.routes[0]!.rules[0]!.backends, [{ subset: {}, weight: 1 }])
})

test('an instance\'s view gets an empty Service for a backend or mirror service nobody has registered yet (the Route stays valid)', () => {
  const { resources } = composeView([
    route('payments', { service: 'payments', rules: [{ backends: [{ service: 'payments-next' }], mirror: { service: 'audit' } }] }),
  ], {}, { fillRouteTargets: true })
  const services = resources.filter((r) => (r as { kind: string }).kind === 'Service').map((r) => (r as { metadata: { name: string } }).metadata.name).sort()
  assert.deepEqual(services, ['audit', 'payments', 'payments-next'])
  assert.deepEqual(validatePolicy(loadValue(resources)).issues.filter((i) => i.severity === 'error'), [])
})
