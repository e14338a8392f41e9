import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { cli, register, startCliDaemon, SERVICE_PAYMENTS, writeFile, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
  const r = await cli(['apply', '-f', writeFile(d.dataDir, 'payments.yaml', SERVICE_PAYMENTS), ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  await register(d, { id: 'payments-v1', service: 'payments', address: '127.0.0.1', port: 8081, labels: { version: 'v1' } })
  await register(d, { id: 'payments-v2', service: 'payments', address: '127.0.0.1', port: 8082, labels: { version: 'v2' } })
})
after(() => d.close())

test('weft explain: the header-matched canary rule, why, and the eligible endpoints of its subset', async () => {
  const r = await cli(['explain', '--from', 'checkout', 'http://payments/charge', '-H', 'X-Canary: true', '-X', 'post', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /^POST http:\/\/payments\/charge from checkout \(policy version \d+\)\n/)
  assert.match(r.stdout, /service    payments \(namespace default, http\)\nendpoints  from the registry \(2 registered\)\n/)
  assert.match(r.stdout, /✓ payments-canary#0  \(Route payments-canary rule 0\)  matched\n      matches\[0\]: header x-canary exact "true" \(got "true"\) ✓\n/)
  assert.match(r.stdout, /· payments-canary#1  \(Route payments-canary rule 1\)  not evaluated\n/)
  assert.match(r.stdout, /route      payments-canary#0: rule 0 of Route payments-canary is the first rule whose matches the request meets/)
  assert.match(r.stdout, /subset version=v2  weight 1 \(100%\)  1 of 2 endpoints eligible\n    ✗ 127\.0\.0\.1:8081  version=v1  \(version is "v1", the subset wants "v2"\)\n    ✓ 127\.0\.0\.1:8082  version=v2\n/)
  assert.match(r.stdout, /timeout            5s  \(Service payments spec\.timeout\)\n/)
  assert.match(r.stdout, /circuit breaker    opens after 5 consecutive failures; half-open after 10s  \(default\)\n/)
  assert.match(r.stdout, /outlier detection  ejects an endpoint after 5 consecutive 5xx/)

  // Without the header: the path rule, its own timeout and its 90/10 split.
  const split = await cli(['explain', '--from', 'checkout', 'payments/charge/1', ...d.flags])
  assert.equal(split.status, 0, split.stderr)
  assert.match(split.stdout, /✗ payments-canary#0 .* no match\n      matches\[0\]: header x-canary exact "true" \(got none\) ✗\n/)
  assert.match(split.stdout, /subset version=v1  weight 90 \(90%\)  1 of 2 endpoints eligible/)
  assert.match(split.stdout, /subset version=v2  weight 10 \(10%\)  1 of 2 endpoints eligible/)
  assert.match(split.stdout, /timeout            2s  \(Route payments-canary rule 1 \(spec\.rules\[1\]\.timeout\)\)/)
})

test('weft explain: no rule matches → the default route with every endpoint; -o json', async () => {
  const r = await cli(['explain', '--from', 'checkout', 'http://payments/refund', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /route      default \(fallback\): no rule of Route payments-canary matches: the request takes the default route of payments/)
  assert.match(r.stdout, /all endpoints  weight 1 \(100%\)  2 of 2 endpoints eligible/)
  const j = JSON.parse((await cli(['explain', '--from', 'checkout', 'http://payments/refund', '-o', 'json', ...d.flags])).stdout)
  assert.equal(j.kind, 'routed')
  assert.equal(j.chosen.fallback, true)
  assert.deepEqual(j.backends[0].endpoints.map((e: { address: string }) => e.address), ['127.0.0.1:8081', '127.0.0.1:8082'])
})

test('weft explain: a host the mesh does not know passes through untouched', async () => {
  const r = await cli(['explain', '--from', 'checkout', 'https://api.example.com/v1', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stdout, /passes through untouched: "api\.example\.com" is not a service the mesh knows\./)
  assert.match(r.stdout, /services the mesh knows: payments\n/)
})

test('weft explain: usage errors exit 2', async () => {
  const noFrom = await cli(['explain', 'http://payments/', ...d.flags])
  assert.equal(noFrom.status, 2)
  assert.match(noFrom.stderr, /needs --from SERVICE/)
  const badHeader = await cli(['explain', '--from', 'checkout', 'http://payments/', '-H', 'nocolon', ...d.flags])
  assert.equal(badHeader.status, 2)
  assert.match(badHeader.stderr, /-H takes 'name: value'/)
})
