// Routes match gRPC service and method; weighted backends by subset labels split gRPC calls as they
// split HTTP requests. Bad gRPC matches are refused with the field named.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { createMesh } from '../../src/index.js'
import { readPolicy } from '../../src/config/source.js'
import { collect, get, ledgerImpl, LedgerClient, ledgerService, startLedger, type Entry, type Ledger } from '../helpers/grpc-kit.js'

const quiet = { info() {}, warn() {}, error() {} }
const stops: (() => unknown)[] = []
after(async () => {
  for (const s of stops.reverse()) await s()
})

test('90/10 split by method: Get goes 90/10 to v1/v2 (within ±3 % over 2,000 calls); List stays on v1', async () => {
  const v1 = await startLedger(ledgerImpl('v1'))
  const v2 = await startLedger(ledgerImpl('v2'))
  stops.push(() => v1.server.forceShutdown(), () => v2.server.forceShutdown())
  const mesh = await createMesh({
    service: 'payments',
    logger: quiet,
    config: [
      ledgerService('ledger', [{ address: v1.address, labels: { version: 'v1' } }, { address: v2.address, labels: { version: 'v2' } }]),
      {
        apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'ledger-canary' },
        spec: {
          service: 'ledger',
          rules: [
            { name: 'get-canary', matches: [{ grpc: { service: 'weft.test.Ledger', method: 'Get' } }], backends: [{ subset: { version: 'v1' }, weight: 90 }, { subset: { version: 'v2' }, weight: 10 }] },
            { name: 'ledger-rest', matches: [{ grpc: { service: 'weft.test.Ledger' } }], backends: [{ subset: { version: 'v1' } }] },
          ],
        },
      },
    ],
  })
  const client = mesh.grpc.client(LedgerClient, 'ledger') as unknown as Ledger
  stops.push(async () => {
    client.close()
    await mesh.close()
  })
  const from: Record<string, number> = { v1: 0, v2: 0 }
  for (let i = 0; i < 100; i++) {
    const batch = await Promise.all(Array.from({ length: 20 }, (_, j) => get(client, { id: `${i}-${j}` })))
    for (const e of batch) from[e.from]!++
  }
  const share = from.v2! / 2000
  assert.ok(Math.abs(share - 0.1) <= 0.03, `v2 got ${(share * 100).toFixed(1)} % of Get calls (want 10 ± 3 %)`)
  for (let i = 0; i < 30; i++) {
    const list = await collect<Entry>(client.List({ id: 'l' }))
    assert.ok(list.every((e) => e.from === 'v1'), 'List matched the second rule: v1 only')
  }
})

test('a gRPC match is validated: names without "/", not next to path, at least one of service and method', () => {
  const routeWith = (match: unknown) => [
    ledgerService('ledger', [{ address: '127.0.0.1:1' }]),
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'ledger', rules: [{ matches: [match] }] } },
  ]
  const errors = (match: unknown) => readPolicy(routeWith(match) as never).issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`)
  assert.deepEqual(errors({ grpc: { service: 'weft.test.Ledger', method: 'Get' } }), [])
  assert.match(errors({ grpc: {} })[0]!, /spec\.rules\[0\]\.matches\[0\]\.grpc: needs service, method or both/)
  assert.match(errors({ grpc: { service: 'a/b' } })[0]!, /without "\/"/)
  assert.match(errors({ grpc: { method: 'Get' }, path: '/x' })[0]!, /either path or grpc/)
  assert.match(errors({ grpc: { verb: 'Get' } })[0]!, /spec\.rules\[0\]\.matches\[0\]\.grpc\.verb/)
})

test('an earlier rule on the whole gRPC service shadows a later one on one of its methods (a warning)', () => {
  const policy = readPolicy([
    ledgerService('ledger', [{ address: '127.0.0.1:1' }]),
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'ledger', rules: [{ matches: [{ grpc: { service: 'weft.test.Ledger' } }] }, { matches: [{ grpc: { service: 'weft.test.Ledger', method: 'Get' } }] }] } },
  ] as never)
  assert.ok(policy.issues.some((i) => i.severity === 'warning' && i.code === 'WEFT_W_ROUTE_SHADOWED'), JSON.stringify(policy.issues))
})
