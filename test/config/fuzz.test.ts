import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText, loadValue } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'

// A seeded generator (mulberry32): the same inputs on every run, so a failure reproduces.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SEED = `apiVersion: weft/v1
kind: Service
metadata: { name: payments }
spec:
  endpoints: [{ address: "127.0.0.1:8081", labels: { version: v1, zone: a } }]
  dns: { host: payments.internal, port: 8080 }
  loadBalancer: { policy: ring-hash, hashOn: { header: x-user }, locality: { minHealthyPercent: 70 } }
  timeout: 2s
  retries: { attempts: 2, perTryTimeout: 1s, retryOn: [connect-failure, 503], budget: { ratio: 0.2 } }
  circuitBreaker: { consecutiveFailures: 5, halfOpenAfter: 10s }
  outlierDetection: { consecutive5xx: 5, maxEjectionPercent: 50 }
---
apiVersion: weft/v1
kind: Route
metadata: { name: r }
spec:
  service: payments
  rules:
    - matches: [{ path: { regex: "/a/[0-9]+" }, headers: { x-canary: "true" }, query: { q: { prefix: a } } }]
      backends: [{ subset: { version: v1 }, weight: 90 }]
      fault: { delay: { percent: 5, fixedDelay: 10ms }, abort: { percent: 1, httpStatus: 503 } }
`

const PIECES = ['', ' ', '\n', ':', '{', '}', '[', ']', '-', '"', "'", '*', '&a', '!!binary', '0', '-1', '1e309', 'null', 'true', '~', '#', '|', '>', '((a+)+)', '\t', '\u0000', 'é', '---']

test('the config loader and validator never throw on mutated input; every error names where it is', () => {
  const random = rng(42)
  let errors = 0
  for (let i = 0; i < 1500; i++) {
    let text = SEED
    const edits = 1 + Math.floor(random() * 4)
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(random() * text.length)
      const cut = Math.floor(random() * 6)
      text = text.slice(0, at) + PIECES[Math.floor(random() * PIECES.length)] + text.slice(at + cut)
    }
    const t0 = performance.now()
    const policy = validatePolicy(loadText(text, 'fuzz.yaml'))
    assert.ok(performance.now() - t0 < 1000, `input ${i} took over 1 s`)
    for (const issue of policy.issues) {
      assert.ok(issue.code.startsWith('WEFT_E_') || issue.code.startsWith('WEFT_W_'), issue.code)
      if (issue.severity === 'error') errors++
      if (issue.code !== 'WEFT_E_SYNTAX') assert.ok(issue.resource.length > 0)
    }
  }
  assert.ok(errors > 100, 'the mutations produced errors to report')
})

test('odd JS values as config are refused with issues, not exceptions', () => {
  for (const v of [null, 42, 'text', [], [null], [[]], { kind: 'Service' }, { apiVersion: 'weft/v1', kind: 'Service', metadata: 'x' },
    { apiVersion: 'weft/v1', kind: 'Service', metadata: { name: 'a' }, spec: { endpoints: 'all' } },
    { apiVersion: 'weft/v1', kind: 'Route', metadata: { name: 'r' }, spec: { service: 'a', rules: [{ matches: [{ path: 5 }] }] } }]) {
    const p = validatePolicy(loadValue(v))
    assert.ok(Array.isArray(p.issues))
  }
})
