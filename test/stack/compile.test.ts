import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Registry } from 'prom-client'
import { compileSnapshot } from '../../src/compile.js'
import { loadValue } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { Stack, type ClientHandler, type ClientLayer } from '../../src/stack/index.js'
import type { ServiceRuntime } from '../../src/stack/service-runtime.js'
import { MeshMetrics, type TargetMetrics } from '../../src/telemetry/metrics.js'
import { silentLogger } from '../../src/util/logger.js'
import { route, service } from '../helpers/mesh.js'
import { StaticResponse } from '../../src/stack/static-response.js'

test('stacks are built once per (service, rule) per config version; requests only read them', () => {
  let wraps = 0
  let calls = 0
  const counting: ClientLayer = {
    role: 'counting',
    wrap(next) {
      wraps++
      return (call, done) => {
        calls++
        next(call, done)
      }
    },
  }
  const terminal: ClientHandler = (_call, done) => done(null, new StaticResponse(200, 'OK', 'NONE', 'ok'))
  const policy = validatePolicy(loadValue([
    service('payments', { endpoints: [{ address: '127.0.0.1:1', labels: { version: 'v1' } }] }),
    service('ledger', { endpoints: [{ address: '127.0.0.1:2' }] }),
    route('r', { service: 'payments', rules: [{ matches: [{ method: 'POST' }] }, { backends: [{ subset: { version: 'v1' } }] }] }),
  ]))
  assert.deepEqual(policy.issues, [])
  const metrics = new MeshMetrics(new Registry(), 'checkout')
  const runtimes = new Map<string, ServiceRuntime>()
  const deps = {
    source: 'checkout', runtimes, stack: new Stack([counting]), terminal, metrics, targetMetrics: new Map<string, TargetMetrics>(),
    ctx: { metrics, logger: silentLogger, onEndpointRemoved() {} },
  }
  const { snapshot } = compileSnapshot(policy, 1, deps)
  // payments: 2 rules + the fallback; ledger: the fallback.
  assert.equal(wraps, 4)
  const svc = snapshot.lookup('payments')!
  for (let i = 0; i < 100; i++) {
    const rule = snapshot.route(svc, { method: i % 2 ? 'POST' : 'GET', pathname: '/x', search: '', headers: {} })
    rule.handler({ target: rule.target } as never, () => {})
  }
  assert.equal(calls, 100)
  assert.equal(wraps, 4, 'no stack is built per request')
  compileSnapshot(policy, 2, deps)
  assert.equal(wraps, 8, 'a new config version builds each stack once more')
  assert.equal(runtimes.size, 2, 'service runtimes (breakers, endpoints, budgets) are reused across versions')
  for (const rt of runtimes.values()) rt.close()
})
