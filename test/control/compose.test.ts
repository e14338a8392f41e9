// compose(): a pushed view (policy + registry endpoints) becomes resources validated like a file.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { composeView } from '../../src/control/compose.js'
import type { EndpointMap } from '../../src/control/protocol.js'
import { loadValue } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { NdjsonLines } from '../../src/control/ndjson.js'

const ep = (address: string, protocol: 'http' | 'grpc' = 'http', labels: Record<string, string> = {}) => ({ address, protocol, labels, instance: `i-${address}` })

test('a Service without endpoints or dns gets the registry endpoints of its name; static ones stay', () => {
  const resources = [
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { timeout: '2s' } },
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'static' }, spec: { endpoints: [{ address: '127.0.0.1:1' }] } },
  ]
  const endpoints: EndpointMap = { payments: [ep('127.0.0.1:8081', 'http', { version: 'v1' })], static: [ep('127.0.0.1:9')] }
  const policy = validatePolicy(loadValue(composeView(resources, endpoints).resources))
  assert.deepEqual(policy.issues, [])
  assert.deepEqual(policy.services.get('payments')!.endpoints.map((e) => [e.address, e.labels]), [['127.0.0.1:8081', { version: 'v1' }]])
  assert.equal(policy.services.get('payments')!.timeoutMs, 2000)
  assert.deepEqual(policy.services.get('static')!.endpoints.map((e) => e.address), ['127.0.0.1:1'])
})

test('a registered service with no Service resource gets a default one with its protocol', () => {
  const policy = validatePolicy(loadValue(composeView([], { ledger: [ep('127.0.0.1:7001', 'grpc'), ep('127.0.0.1:7002', 'grpc')] }).resources))
  const s = policy.services.get('ledger')!
  assert.equal(s.protocol, 'grpc')
  assert.deepEqual(s.endpoints.map((e) => e.address), ['127.0.0.1:7001', '127.0.0.1:7002'])
})

test('endpoints of another protocol than the Service are left out and reported', () => {
  const resources = [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'ledger' }, spec: { protocol: 'grpc' } }]
  const out = composeView(resources, { ledger: [ep('127.0.0.1:7001', 'grpc'), ep('127.0.0.1:8001', 'http')] })
  assert.equal(out.skipped.length, 1)
  assert.equal(out.skipped[0]!.endpoint.address, '127.0.0.1:8001')
  const policy = validatePolicy(loadValue(out.resources))
  assert.deepEqual(policy.services.get('ledger')!.endpoints.map((e) => e.address), ['127.0.0.1:7001'])
})

test('a Route whose service left the registry still validates on the instance (fillRouteTargets), not at the daemon', () => {
  const resources = [{ apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'gone', rules: [{ backends: [{ subset: {}, weight: 1 }] }] } }]
  const strict = validatePolicy(loadValue(composeView(resources, {}).resources))
  assert.ok(strict.issues.some((i) => i.code === 'WEFT_E_REF_UNKNOWN'))
  const filled = validatePolicy(loadValue(composeView(resources, {}, { fillRouteTargets: true }).resources))
  assert.deepEqual(filled.issues.filter((i) => i.severity === 'error'), [])
  assert.deepEqual(filled.services.get('gone')!.endpoints, [])
})

test('ndjson: lines split across chunks, and a UTF-8 character cut between chunks, come out whole', () => {
  const lines = new NdjsonLines()
  const text = Buffer.from('{"a":"é"}\n{"b":2}\n\n{"c"')
  assert.deepEqual(lines.push(text.subarray(0, 7)), [])
  assert.deepEqual(lines.push(text.subarray(7)), ['{"a":"é"}', '{"b":2}'])
  assert.deepEqual(lines.push(Buffer.from(':3}\n')), ['{"c":3}'])
})

test('namespaces: a registration joins only the Service of its own namespace (team-a cannot feed default/payments)', () => {
  const resources = [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: {} }]
  const endpoints: EndpointMap = { 'default/payments': [ep('127.0.0.1:8081')], 'team-a/payments': [ep('127.0.0.1:6666')] }
  const out = composeView(resources, endpoints)
  const policy = validatePolicy(loadValue(out.resources))
  assert.deepEqual(policy.issues, [])
  assert.deepEqual(policy.services.get('payments')!.endpoints.map((e) => e.address), ['127.0.0.1:8081'])
  assert.equal(policy.services.get('payments')!.namespace, 'default')
  assert.deepEqual(out.skipped.map((s) => [s.service, s.endpoint.address]), [['team-a/payments', '127.0.0.1:6666']])
  assert.match(out.skipped[0]!.reason, /registered in namespace team-a, but the Service "payments" here is the one of namespace default/)
  // A Service declared in team-a takes team-a's registrations, and not default's.
  const teamA = [{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments', namespace: 'team-a' }, spec: {} }]
  const a = validatePolicy(loadValue(composeView(teamA, endpoints).resources))
  assert.deepEqual(a.services.get('payments')!.endpoints.map((e) => e.address), ['127.0.0.1:6666'])
})

test('namespaces: a registry-only service gets its registrations\' namespace; of two sharing a name, the viewer\'s wins, then default', () => {
  const only = validatePolicy(loadValue(composeView([], { 'team-a/ledger': [ep('127.0.0.1:7001', 'grpc')] }).resources))
  assert.equal(only.services.get('ledger')!.namespace, 'team-a')
  const both: EndpointMap = { 'default/cache': [ep('127.0.0.1:1')], 'team-a/cache': [ep('127.0.0.1:2')] }
  const pickFor = (namespace?: string) => {
    const out = composeView([], both, { namespace })
    const svc = validatePolicy(loadValue(out.resources)).services.get('cache')!
    return [svc.namespace, svc.endpoints.map((e) => e.address), out.skipped.map((s) => s.service)]
  }
  assert.deepEqual(pickFor('team-a'), ['team-a', ['127.0.0.1:2'], ['default/cache']])
  assert.deepEqual(pickFor('team-b'), ['default', ['127.0.0.1:1'], ['team-a/cache']])
  assert.deepEqual(pickFor(undefined), ['default', ['127.0.0.1:1'], ['team-a/cache']])
  // A key without a namespace (a cache written before keys had one) is the default namespace.
  const legacy = validatePolicy(loadValue(composeView([{ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'cache' }, spec: {} }], { cache: [ep('127.0.0.1:3')] }).resources))
  assert.deepEqual(legacy.services.get('cache')!.endpoints.map((e) => e.address), ['127.0.0.1:3'])
})
