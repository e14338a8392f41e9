// Deeply nested YAML/JSON is refused before the parser runs (it recurses per level: text nested a
// few hundred thousand levels overflowed the stack, and a second such text killed the process).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { findDeepNesting, MAX_NESTING } from '../../src/config/nesting.js'
import { validatePolicy } from '../../src/config/validate.js'

test('the review inputs (flow [×500k, block "- "×300k), each twice in one process: one WEFT_E_SYNTAX issue, fast', () => {
  for (const [text, line, column] of [['['.repeat(500_000), 1, 65], ['- '.repeat(300_000), 1, 129]] as const) {
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now()
      const r = loadText(text, 'deep.yaml')
      const ms = performance.now() - t0
      assert.equal(r.resources.length, 0)
      assert.equal(r.issues.length, 1)
      const issue = r.issues[0]!
      assert.equal(issue.code, 'WEFT_E_SYNTAX')
      assert.match(issue.message, new RegExp(`nested more than ${MAX_NESTING} levels deep; refused before parsing`))
      assert.deepEqual([issue.file, issue.line, issue.column], ['deep.yaml', line, column])
      assert.ok(ms < 200, `took ${ms.toFixed(0)} ms`)
    }
  }
})

test('the bound: 64 flow levels parse, 65 do not; block nesting by indentation and by indicators counts', () => {
  const flow = (n: number) => '['.repeat(n) + ']'.repeat(n)
  assert.equal(loadText(flow(MAX_NESTING)).issues.length, 0)
  assert.match(loadText(flow(MAX_NESTING + 1)).issues[0]!.message, /nested more than 64/)
  const indented = (n: number) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' x\n'
  assert.equal(loadText(indented(MAX_NESTING - 1)).issues.length, 0)
  const deep = loadText(indented(MAX_NESTING + 1)).issues[0]!
  assert.equal(deep.line, MAX_NESTING + 1)
  assert.ok(findDeepNesting('? '.repeat(100) + 'x'))
  assert.ok(findDeepNesting('a: ' + '- '.repeat(100) + 'x'))
})

test('brackets inside quoted scalars, comments and block scalars do not count; a real policy passes', () => {
  const text = `apiVersion: weft/v1
kind: Route
metadata: { name: r }   # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[
spec:
  service: payments
  rules:
    - matches: [{ headers: { x-a: { prefix: "${'['.repeat(100)}" }, x-b: { exact: '${'{'.repeat(100)}' } } }]
      backends: [{ subset: { version: v1 }, weight: 100 }]
---
apiVersion: weft/v1
kind: Service
metadata:
  name: payments
  annotations:
    note: |
      ${'['.repeat(100)}
spec: { protocol: http }
`
  assert.equal(findDeepNesting(text), undefined)
  const policy = validatePolicy(loadText(text))
  assert.deepEqual(policy.issues.filter((i) => i.severity === 'error'), [])
  assert.equal(policy.routes.length, 1)
})
