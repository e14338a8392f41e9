// IdentityRevocation validation (RELIABILITY M8): metadata names the workload, spec.spiffeId must
// be that workload's ID (compared as parts, any trust domain), reason is required on one line.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'

const doc = (meta: string, spec: string) => `apiVersion: weft/v1\nkind: IdentityRevocation\nmetadata: ${meta}\nspec: ${spec}\n`
const check = (meta: string, spec: string) => validatePolicy(loadText(doc(meta, spec), 'f.yaml'))
const errors = (meta: string, spec: string) => check(meta, spec).issues.filter((i) => i.severity === 'error').map((i) => `${i.path}: ${i.message}`)

test('a revocation validates into RevocationSettings', () => {
  const p = check('{ name: checkout, namespace: shop }', '{ spiffeId: "spiffe://weft.local/ns/shop/sa/checkout", reason: "key leaked", revokedAt: "2026-12-07T00:00:00Z" }')
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.revocations, [{ name: 'checkout', namespace: 'shop', spiffeId: 'spiffe://weft.local/ns/shop/sa/checkout', reason: 'key leaked', revokedAt: '2026-12-07T00:00:00Z' }])
})

test('a revocation whose spiffeId is not its metadata\'s workload, or without a reason, or with unknown fields is an error naming the field', () => {
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/payments", reason: x }').join('\n'), /spec\.spiffeId: must be spiffe:\/\/<trust domain>\/ns\/default\/sa\/checkout/)
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/checkout/extra", reason: x }').join('\n'), /spec\.spiffeId/)
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://Weft.Local/ns/default/sa/checkout", reason: x }').join('\n'), /spec\.spiffeId/)
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/checkout" }').join('\n'), /spec\.reason: is required/)
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/checkout", reason: x, until: y }').join('\n'), /spec\.until: unknown field/)
  assert.match(errors('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/checkout", reason: x, revokedAt: soon }').join('\n'), /spec\.revokedAt: must be an ISO time/)
  assert.deepEqual(check('{ name: checkout }', '{ spiffeId: "spiffe://weft.local/ns/default/sa/payments", reason: x }').revocations, [])
})
