import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText, loadValue } from '../../src/config/load.js'
import { formatIssue, validatePolicy } from '../../src/config/validate.js'

const errorsOf = (text: string) => validatePolicy(loadText(text, 'weft.yaml')).issues.filter((i) => i.severity === 'error')

test('a Service with only a name and endpoints gets every default', () => {
  const p = validatePolicy(loadValue({ apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'payments' }, spec: { endpoints: [{ address: '127.0.0.1:8081' }] } }))
  assert.deepEqual(p.issues, [])
  const s = p.services.get('payments')!
  assert.equal(s.protocol, 'http')
  assert.equal(s.namespace, 'default')
  assert.equal(s.loadBalancer.policy, 'p2c-ewma')
  assert.equal(s.timeoutMs, 15_000)
  assert.equal(s.retries.attempts, 2)
  assert.deepEqual(s.retries.budget, { ratio: 0.2, minPerSecond: 10, ttlMs: 10_000 })
  assert.ok(s.retries.retryOnConnectFailure && s.retries.retryOnReset && s.retries.retryOnStatus.has(503))
  assert.equal(s.circuitBreaker.consecutiveFailures, 5)
  assert.equal(s.outlierDetection.maxEjectionPercent, 50)
  assert.equal(s.concurrencyLimit, 1024)
})

test('validation errors name the resource, the field path and line:column', () => {
  const yaml = [
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: payments }',
    'spec:',
    '  endpoints:',
    '    - { address: 127.0.0.1:8081 }',
    '  retries:',
    '    attempts: many',
    '  timeout: 5 seconds',
    '',
  ].join('\n')
  const errs = errorsOf(yaml)
  assert.equal(errs.length, 2)
  const attempts = errs.find((e) => e.path === 'spec.retries.attempts')!
  assert.equal(attempts.resource, 'Service/payments')
  assert.equal(attempts.line, 8)
  assert.equal(attempts.column, 15)
  assert.match(formatIssue(attempts), /^weft\.yaml:8:15 error WEFT_E_FIELD_INVALID Service\/payments spec\.retries\.attempts: must be a number/)
  const timeout = errs.find((e) => e.path === 'spec.timeout')!
  assert.equal(timeout.line, 9)
  assert.match(timeout.message, /duration like "250ms"/)
})

test('unknown fields are errors (never silently dropped), in the second document of a file', () => {
  const yaml = [
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: a }',
    'spec: { endpoints: [{ address: "127.0.0.1:1" }] }',
    '---',
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: b }',
    'spec:',
    '  loadBalancer: { policy: round-robin, stickyness: true }',
  ].join('\n')
  const [e] = errorsOf(yaml)
  assert.equal(e!.code, 'WEFT_E_FIELD_UNKNOWN')
  assert.equal(e!.resource, 'Service/b')
  assert.equal(e!.path, 'spec.loadBalancer.stickyness')
  assert.equal(e!.line, 10)
})

test('a JSON array of resources loads with positions', () => {
  const json = JSON.stringify([
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'a' }, spec: {} },
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'nope', rules: [{}] } },
  ], null, 2)
  const [e] = errorsOf(json)
  assert.equal(e!.code, 'WEFT_E_REF_UNKNOWN')
  assert.equal(e!.resource, 'Route/r')
  assert.equal(e!.path, 'spec.service')
  assert.ok(e!.line! > 10)
})

test('syntax errors carry line:column', () => {
  const [e] = errorsOf('apiVersion: weft/v1\nkind: Service\nmetadata: { name: a\n')
  assert.equal(e!.code, 'WEFT_E_SYNTAX')
  assert.ok(e!.line! >= 3)
})

test('unknown kinds, bad apiVersion, bad names and unsafe regexes are refused', () => {
  const errs = validatePolicy(loadValue([
    { apiVersion: 'weft/v2', kind: 'Service', metadata: { name: 'a' } },
    { apiVersion: 'weft/v1', kind: 'VirtualService', metadata: { name: 'v' } },
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'Bad_Name' } },
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'a', rules: [{ matches: [{ path: { regex: '(a+)+$' } }] }] } },
  ])).issues.filter((i) => i.severity === 'error')
  const codes = errs.map((e) => `${e.resource} ${e.path} ${e.code}`)
  assert.ok(codes.includes('Service/a apiVersion WEFT_E_FIELD_INVALID'), codes.join('\n'))
  assert.ok(codes.includes('VirtualService/v kind WEFT_E_KIND_UNKNOWN'))
  assert.ok(codes.includes('Service/Bad_Name metadata.name WEFT_E_FIELD_INVALID'))
  assert.ok(codes.includes('Route/r spec.rules[0].matches[0].path.regex WEFT_E_REGEX_UNSAFE'))
})

test('two overlapping routes are reported as a warning, not silently merged', () => {
  const p = validatePolicy(loadText([
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: payments }',
    'spec: { endpoints: [{ address: "127.0.0.1:1", labels: { version: v1 } }, { address: "127.0.0.1:2", labels: { version: v2 } }] }',
    '---',
    'apiVersion: weft/v1',
    'kind: Route',
    'metadata: { name: api-all }',
    'spec:',
    '  service: payments',
    '  rules:',
    '    - matches: [{ path: { prefix: /api } }]',
    '      backends: [{ subset: { version: v1 } }]',
    '---',
    'apiVersion: weft/v1',
    'kind: Route',
    'metadata: { name: api-charge }',
    'spec:',
    '  service: payments',
    '  rules:',
    '    - matches: [{ path: { prefix: /api/charge }, method: POST }]',
    '      backends: [{ subset: { version: v2 } }]',
  ].join('\n'), 'routes.yaml'))
  assert.equal(p.issues.filter((i) => i.severity === 'error').length, 0)
  const [w] = p.issues.filter((i) => i.severity === 'warning')
  assert.equal(w!.code, 'WEFT_W_ROUTE_SHADOWED')
  assert.equal(w!.resource, 'Route/api-charge')
  assert.equal(w!.line, 21)
  assert.match(w!.message, /rule 0 of Route "api-all"/)
  // Both routes are kept, in order: the earlier one wins at run time.
  assert.deepEqual(p.routes.map((r) => r.name), ['api-all', 'api-charge'])
})

test('retryOn, durations and subsets normalize', () => {
  const p = validatePolicy(loadText([
    'apiVersion: weft/v1',
    'kind: Service',
    'metadata: { name: s }',
    'spec:',
    '  endpoints: [{ address: "127.0.0.1:1", labels: { version: v1 } }]',
    '  timeout: 1m30s',
    '  retries: { attempts: 3, perTryTimeout: 250ms, retryOn: [connect-failure, 503, 409] }',
    '---',
    'apiVersion: weft/v1',
    'kind: Route',
    'metadata: { name: r }',
    'spec:',
    '  service: s',
    '  rules:',
    '    - backends: [{ subset: { version: v9 } }]',
    '      retries: { attempts: 1 }',
  ].join('\n')))
  const s = p.services.get('s')!
  assert.equal(s.timeoutMs, 90_000)
  assert.equal(s.retries.perTryTimeoutMs, 250)
  assert.deepEqual([...s.retries.retryOnStatus].sort(), [409, 503])
  assert.equal(s.retries.retryOnReset, false)
  const rule = p.routes[0]!.rules[0]!
  assert.equal(rule.retries!.attempts, 1)
  assert.equal(rule.retries!.perTryTimeoutMs, 250, 'a rule override inherits the service fields it does not set')
  const w = p.issues.find((i) => i.code === 'WEFT_W_SUBSET_EMPTY')!
  assert.equal(w.path, 'spec.rules[0].backends[0].subset')
})
