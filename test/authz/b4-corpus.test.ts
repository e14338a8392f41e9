import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { compileAuthz, normalizePath, type AuthzEngine, type AuthzRequest } from '../../src/authz/index.js'
import type { AuthorizationSettings } from '../../src/config/types.js'

// RELIABILITY B4: a committed corpus of spellings of /admin; none may get through.
function corpus(file: string): string[] {
  const lines = readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8').split('\n')
  return lines.filter((l) => l.length > 0 && !l.startsWith('#'))
}
const ADMIN = corpus('admin-path-variants.txt')
const ADMIN_CASE = corpus('admin-case-variants.txt')

const SVC = { service: 'payments', namespace: 'default' }
const policy = (name: string, action: AuthorizationSettings['action'], paths: string[], extra: Partial<AuthorizationSettings> = {}): AuthorizationSettings =>
  ({ name, namespace: 'default', action, rules: [{ from: [], to: [{ paths }], when: [] }], order: 0, ...extra })
const req = (path: string, headers: AuthzRequest['headers'] = {}): AuthzRequest =>
  ({ principal: 'spiffe://weft.local/ns/default/sa/checkout', namespace: 'default', method: 'GET', path, port: 8080, headers })

const denyAdmin = compileAuthz([policy('deny-admin', 'DENY', ['/admin', '/admin/*'])], SVC)!
const allowPublic = compileAuthz([policy('allow-public', 'ALLOW', ['/public/*'])], SVC)!

function outcome(e: AuthzEngine, path: string): string {
  const d = e.evaluate(req(path))
  return `${d.allowed ? 'ALLOWED' : 'denied'} (${d.reason}${d.policy ? ` ${d.policy}` : ''}) normalised=${JSON.stringify(normalizePath(path))}`
}

test('the corpus is at least 50 distinct variants', () => {
  assert.ok(ADMIN.length >= 50, `${ADMIN.length}`)
  assert.equal(new Set(ADMIN).size, ADMIN.length, 'no duplicates')
})

test('controls: the two policies do let through what they should (so the corpus results mean something)', () => {
  assert.equal(denyAdmin.evaluate(req('/public/x')).allowed, true)
  assert.equal(denyAdmin.evaluate(req('/administrator')).allowed, true)
  assert.equal(denyAdmin.evaluate(req('/public/admin')).allowed, true)
  assert.equal(allowPublic.evaluate(req('/public/x')).allowed, true)
  assert.equal(allowPublic.evaluate(req('/public/./x?y')).allowed, true)
})

test('B4: a DENY on /admin and /admin/* denies (or refuses as invalid) every variant in the corpus', () => {
  const through = ADMIN.filter((p) => {
    const d = denyAdmin.evaluate(req(p))
    return d.allowed || !(d.reason === 'deny-matched' || d.reason === 'path-invalid')
  })
  assert.deepEqual(through.map((p) => `${JSON.stringify(p)}: ${outcome(denyAdmin, p)}`), [])
})

test('B4: an ALLOW of only /public/* lets no variant in the corpus through', () => {
  const through = ADMIN.filter((p) => allowPublic.evaluate(req(p)).allowed)
  assert.deepEqual(through.map((p) => `${JSON.stringify(p)}: ${outcome(allowPublic, p)}`), [])
})

test('B4 /ADMIN per config: case variants are other paths by default, and all denied with ignorePathCase', () => {
  const folded = compileAuthz([policy('deny-admin', 'DENY', ['/admin', '/admin/*'], { ignorePathCase: true })], SVC)!
  const through = ADMIN_CASE.filter((p) => folded.evaluate(req(p)).allowed)
  assert.deepEqual(through.map((p) => `${JSON.stringify(p)}: ${outcome(folded, p)}`), [])
  // Default: case-sensitive, like Istio (a router that ignores case needs ignorePathCase).
  assert.equal(denyAdmin.evaluate(req('/ADMIN')).allowed, true)
  // Folding applies to every variant of the main corpus too.
  assert.deepEqual(ADMIN.filter((p) => folded.evaluate(req(p)).allowed), [])
  // An ALLOW of /public/* stays case-sensitive: /PUBLIC/x is not /public/x.
  assert.deepEqual(ADMIN_CASE.filter((p) => allowPublic.evaluate(req(p)).allowed), [])
})

test('B4 Host: a DENY on the Host header holds for case, a trailing dot and a port', () => {
  const e = compileAuthz([{ name: 'deny-host', namespace: 'default', action: 'DENY', order: 0,
    rules: [{ from: [], to: [], when: [{ key: 'request.headers[host]', values: ['payments.default'] }] }] }], SVC)!
  for (const host of ['payments.default', 'PAYMENTS.DEFAULT', 'Payments.Default', 'payments.default.', 'payments.default..', 'payments.default:80',
    'PAYMENTS.default.:8080', 'payments.default:']) {
    assert.equal(e.evaluate(req('/x', { host })).allowed, false, host)
  }
  assert.equal(e.evaluate(req('/x', { host: 'payments.shop' })).allowed, true)
})
