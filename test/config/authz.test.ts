import assert from 'node:assert/strict'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { formatIssue, validatePolicy } from '../../src/config/validate.js'

const SERVICE = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { endpoints: [{ address: "127.0.0.1:8081" }] }\n---\n'
const policyDoc = (spec: string) => `${SERVICE}apiVersion: weft/v1\nkind: AuthorizationPolicy\nmetadata: { name: p }\nspec:\n${spec}`
const check = (spec: string) => validatePolicy(loadText(policyDoc(spec), 'f.yaml'))
const errorsOf = (spec: string) => check(spec).issues.filter((i) => i.severity === 'error')
const warningsOf = (spec: string) => check(spec).issues.filter((i) => i.severity === 'warning')
/** Line of `spec:` in policyDoc, so tests can say which line of the spec they mean. */
const SPEC_LINE = 9

test('the ARCHITECTURE §4 examples validate into AuthorizationSettings', () => {
  const text = `${SERVICE}apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-deny-admin }
spec:
  service: payments
  action: DENY
  rules:
    - to: [{ paths: ["/admin", "/admin/*"] }]
---
apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: payments-allow-checkout }
spec:
  service: payments
  action: ALLOW
  rules:
    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/checkout"] }]
      to: [{ methods: [POST], paths: ["/charge"] }]
    - from: [{ requestPrincipals: ["https://issuer.example/*"] }]
      when: [{ key: "request.auth.claims[scope]", values: ["payments:read"] }]
`
  const p = validatePolicy(loadText(text, 'f.yaml'))
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.authorization.map((a) => [a.name, a.action, a.service, a.namespace, a.order]), [
    ['payments-deny-admin', 'DENY', 'payments', 'default', 1],
    ['payments-allow-checkout', 'ALLOW', 'payments', 'default', 2],
  ])
  assert.deepEqual(p.authorization[0]!.rules, [{ from: [], to: [{ paths: ['/admin', '/admin/*'] }], when: [] }])
  assert.deepEqual(p.authorization[1]!.rules[0], { from: [{ principals: ['spiffe://weft.local/ns/default/sa/checkout'] }], to: [{ methods: ['POST'], paths: ['/charge'] }], when: [] })
  assert.deepEqual(p.authorization[1]!.rules[1]!.when, [{ key: 'request.auth.claims[scope]', values: ['payments:read'] }])
})

test('defaults: action ALLOW, no service (the whole namespace), spec {} is allow-nothing', () => {
  const p = check('  {}\n')
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.authorization, [{ name: 'p', namespace: 'default', action: 'ALLOW', rules: [], order: 1 }])
})

test("Istio's wrapped form (from: [{ source }], to: [{ operation }]) reads the same as the flat one; mixing is an error", () => {
  const p = check('  rules:\n    - from: [{ source: { namespaces: [shop] } }]\n      to: [{ operation: { ports: [8080, "9090"] } }]\n')
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.authorization[0]!.rules[0], { from: [{ namespaces: ['shop'] }], to: [{ ports: [8080, 9090] }], when: [] })
  const [err] = errorsOf('  rules:\n    - from: [{ source: { namespaces: [shop] }, principals: ["*"] }]\n')
  assert.equal(err!.path, 'spec.rules[0].from[0]')
  assert.match(err!.message, /either \{ source/)
})

test('errors carry the field path and line:column; the policy is then not returned at all (never half-understood)', () => {
  const spec = [
    '  action: DENY',
    '  rules:',
    '    - to:',
    '        - paths: ["/admin", "/a*b"]',
    '          methods: [get]',
    '      when:',
    '        - key: request.time',
    '          values: ["x"]',
    '',
  ].join('\n')
  const result = check(spec)
  assert.deepEqual(result.authorization, [])
  const errs = result.issues.filter((i) => i.severity === 'error')
  const star = errs.find((e) => e.path === 'spec.rules[0].to[0].paths[1]')!
  assert.equal(star.code, 'WEFT_E_AUTHZ_PATTERN_INVALID')
  assert.equal(star.line, SPEC_LINE + 4)
  assert.equal(star.column, 29)
  assert.match(formatIssue(star), /^f\.yaml:13:29 error WEFT_E_AUTHZ_PATTERN_INVALID AuthorizationPolicy\/p spec\.rules\[0\]\.to\[0\]\.paths\[1\]: "\/a\*b": a \* may only start or end/)
  const method = errs.find((e) => e.path === 'spec.rules[0].to[0].methods[0]')!
  assert.equal(method.line, SPEC_LINE + 5)
  assert.match(method.message, /write "GET"/)
  const key = errs.find((e) => e.path === 'spec.rules[0].when[0].key')!
  assert.equal(key.code, 'WEFT_E_AUTHZ_KEY_UNKNOWN')
  assert.equal(key.line, SPEC_LINE + 7)
  assert.equal(key.column, 16)
  assert.match(key.message, /unknown key "request\.time" \(this version understands request\.headers\[<name>\], source\.principal/)
})

test('unknown fields are errors at every level (fail closed: a field we do not understand never widens access)', () => {
  const errs = errorsOf('  selector: { app: x }\n  rules:\n    - from: [{ ipBlocks: ["10.0.0.0/8"] }]\n      to: [{ hosts: [x] }]\n      when: [{ key: source.namespace, values: [a], regex: "x" }]\n      extra: 1\n')
  assert.deepEqual(errs.map((e) => [e.code, e.path]).sort(), [
    ['WEFT_E_FIELD_UNKNOWN', 'spec.rules[0].extra'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.rules[0].from[0].ipBlocks'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.rules[0].to[0].hosts'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.rules[0].when[0].regex'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.selector'],
  ].sort())
})

test('action: ALLOW | DENY | AUDIT; CUSTOM is refused with a reason', () => {
  for (const a of ['ALLOW', 'DENY', 'AUDIT']) assert.equal(check(`  action: ${a}\n  rules: [{}]\n`).authorization[0]!.action, a)
  assert.match(errorsOf('  action: CUSTOM\n')[0]!.message, /CUSTOM \(external authorization\) is not supported/)
  assert.match(errorsOf('  action: allow\n')[0]!.message, /must be one of ALLOW \| DENY \| AUDIT/)
})

test('spec.service that is not a Service resource is a warning (registry-only services exist)', () => {
  const p = check('  service: ledger\n')
  assert.equal(p.authorization.length, 1)
  const [w] = p.issues
  assert.equal(w!.code, 'WEFT_W_SERVICE_UNKNOWN')
  assert.equal(w!.line, SPEC_LINE + 1)
  assert.deepEqual(check('  service: payments\n').issues, [])
})

test('principals must be SPIFFE IDs or patterns of them', () => {
  const bad: [string, RegExp][] = [
    ['weft.local/ns/default/sa/checkout', /write "spiffe:\/\/weft\.local\/ns\/default\/sa\/checkout"/],
    ['checkout', /a principal is a SPIFFE ID/],
    ['spiffe://Weft.Local/ns/a/sa/b', /trust domain "Weft\.Local"/],
    ['spiffe://weft.local*', /must name the whole trust domain/],
    ['spiffe://weft.local', /names a trust domain, not a workload/],
    ['spiffe://weft.local/ns/a/../sa/b', /a "\.\." segment/],
    ['spiffe://weft.local/ns//a', /an empty segment/],
    ['spiffe://weft.local/ns/a%2Fb', /no percent-encoding/],
    ['spiffe://weft.local/ns/*/sa/x', /a \* may only start or end/],
  ]
  for (const [value, why] of bad) {
    const errs = errorsOf(`  rules: [{ from: [{ principals: ["${value}"] }] }]\n`)
    assert.equal(errs.length, 1, value)
    assert.equal(errs[0]!.path, 'spec.rules[0].from[0].principals[0]')
    assert.match(errs[0]!.message, why, value)
  }
  for (const ok of ['*', 'spiffe://*', 'spiffe://weft.local/ns/default/*', '*/sa/checkout', 'spiffe://weft.local/ns/default/sa/checkout']) {
    assert.deepEqual(errorsOf(`  rules: [{ from: [{ principals: ["${ok}"], notPrincipals: ["${ok}"] }] }]\n`), [], ok)
  }
})

test('namespaces, requestPrincipals, methods and ports have their own forms', () => {
  const cases: [string, string, RegExp][] = [
    ['from: [{ namespaces: ["shop/x"] }]', 'from[0].namespaces[0]', /a namespace \(pattern\) may hold only/],
    ['from: [{ requestPrincipals: ["alice"] }]', 'from[0].requestPrincipals[0]', /"<issuer>\/<subject>"/],
    ['to: [{ methods: ["*"] }]', 'to[0].methods[0]', /not an HTTP method/],
    ['to: [{ ports: [0] }]', 'to[0].ports[0]', /not a port/],
    ['to: [{ ports: [65536] }]', 'to[0].ports[0]', /not a port/],
    ['to: [{ ports: ["80*"] }]', 'to[0].ports[0]', /not a port/],
    ['to: [{ ports: [8.5] }]', 'to[0].ports[0]', /not a port/],
  ]
  for (const [rule, field, why] of cases) {
    const errs = errorsOf(`  rules: [{ ${rule} }]\n`)
    assert.equal(errs.length, 1, rule)
    assert.equal(errs[0]!.path, `spec.rules[0].${field}`, rule)
    assert.match(errs[0]!.message, why, rule)
  }
  assert.deepEqual(errorsOf('  rules: [{ from: [{ namespaces: ["shop-*"], requestPrincipals: ["https://i.example/alice", "*"] }], to: [{ methods: [GET, M-SEARCH], ports: [1, 65535] }] }]\n'), [])
})

test('paths start with "/" (or are "*" / "*suffix") and are written normalised, or they could never match', () => {
  const cases: [string, RegExp][] = [
    ['admin', /must start with "\/"/],
    ['/admin?x=1', /without their query/],
    ['/admin#top', /without their query and fragment/],
    ['//admin', /an empty segment/],
    ['/public/../admin', /a "\.\." segment/],
    ['/./admin', /a "\." segment/],
    ['/%61dmin', /write "a"/],
    ['/a%2Fb', /decoded to "\/"/],
    ['/a%2a', /write %2A/],
    ['/a%zz', /percent-encoded byte/],
    ['/a b', /percent-encoded, e\.g\. %20/],
    ['/a\\\\b', /read as "\/"/],
    ['/admin/*/x', /a \* may only start or end/],
    ['*admin*', /a \* may only start or end/],
  ]
  for (const [value, why] of cases) {
    const errs = errorsOf(`  rules: [{ to: [{ paths: ["${value}"] }] }]\n`)
    assert.equal(errs.length, 1, value)
    assert.match(errs[0]!.message, why, value)
  }
  assert.deepEqual(errorsOf('  rules: [{ to: [{ paths: ["/", "*", "/admin/*", "*.php", "/files/a%20b", "/a/..b", "/.well-known/*"] }] }]\n'), [])
})

test('empty lists, empty entries and conditions without values are errors, not "match anything"', () => {
  assert.match(errorsOf('  rules: [{ from: [{ principals: [] }] }]\n')[0]!.message, /empty list/)
  assert.match(errorsOf('  rules: [{ from: [{}] }]\n')[0]!.message, /empty source would match every caller/)
  assert.match(errorsOf('  rules: [{ to: [{}] }]\n')[0]!.message, /empty operation would match every request/)
  assert.match(errorsOf('  rules: [{ when: [{ key: source.namespace }] }]\n')[0]!.message, /needs values, notValues or both/)
  // An empty rule is explicit and fine: it matches every request.
  assert.deepEqual(check('  action: DENY\n  rules: [{}]\n').authorization[0]!.rules, [{ from: [], to: [], when: [] }])
})

test('when keys: the fixed list; header names are stored lowercase; values take the key\'s form', () => {
  const ok = [
    'request.headers[X-Tenant]', 'source.principal', 'source.namespace', 'request.auth.principal', 'request.auth.audiences',
    'request.auth.presenter', 'request.auth.claims[scope]', 'request.auth.claims[realm_access][roles]', 'destination.port',
  ]
  const values: Record<string, string> = { 'source.principal': '"spiffe://weft.local/ns/a/sa/b"', 'destination.port': '8080', 'request.auth.principal': '"https://i/x"' }
  for (const key of ok) {
    const p = check(`  rules: [{ when: [{ key: "${key}", values: [${values[key] ?? 'x'}] }] }]\n`)
    assert.deepEqual(p.issues, [], key)
  }
  assert.equal(check('  rules: [{ when: [{ key: "request.headers[X-Tenant]", values: [acme] }] }]\n').authorization[0]!.rules[0]!.when[0]!.key, 'request.headers[x-tenant]')
  const bad: [string, string, RegExp][] = [
    ['request.method', 'x', /unknown key/],
    ['request.headers[bad name]', 'x', /not a header name/],
    ['request.auth.claims', 'x', /unknown key/],
    ['request.auth.claims[]', 'x', /written request\.auth\.claims\[name\]/],
    ['request.auth.claims[a]b', 'x', /written request\.auth\.claims\[name\]/],
    ['source.ip', '"10.0.0.1"', /unknown key/],
    ['destination.port', 'http', /not a port/],
    ['source.principal', 'checkout', /a principal is a SPIFFE ID/],
    ['request.headers[host]', 'Payments', /write "payments"/],
    ['request.headers[host]', '"payments:8080"', /without the port/],
  ]
  for (const [key, value, why] of bad) {
    const errs = errorsOf(`  rules: [{ when: [{ key: "${key}", values: [${value}] }] }]\n`)
    assert.equal(errs.length, 1, key)
    assert.match(errs[0]!.message, why, `${key} ${value}`)
  }
})

test('lint: negative matches in an ALLOW policy are warned about (WEFT_W_AUTHZ_NEGATIVE_ALLOW); in DENY they are the recommended form', () => {
  const spec = '  rules:\n    - from: [{ notNamespaces: [test] }]\n      to: [{ notPaths: ["/admin/*"], notMethods: [DELETE], notPorts: [9090] }]\n      when: [{ key: "request.headers[x-env]", notValues: [dev] }]\n'
  const ws = warningsOf(spec)
  assert.deepEqual(ws.map((w) => [w.code, w.path]), [
    ['WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'spec.rules[0].from[0].notNamespaces'],
    ['WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'spec.rules[0].to[0].notMethods'],
    ['WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'spec.rules[0].to[0].notPaths'],
    ['WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'spec.rules[0].to[0].notPorts'],
    ['WEFT_W_AUTHZ_NEGATIVE_ALLOW', 'spec.rules[0].when[0].notValues'],
  ])
  const notPaths = ws.find((w) => w.path.endsWith('notPaths'))!
  assert.match(formatIssue(notPaths), /^f\.yaml:12:24 warning WEFT_W_AUTHZ_NEGATIVE_ALLOW AuthorizationPolicy\/p spec\.rules\[0\]\.to\[0\]\.notPaths: negative match in an ALLOW policy/)
  assert.equal(check(spec).authorization.length, 1, 'a warning keeps the policy')
  assert.deepEqual(warningsOf(`  action: DENY\n${spec}`), [])
  assert.deepEqual(warningsOf(`  action: AUDIT\n${spec}`), [])
})

test('lint: a DENY or AUDIT policy with no rules has no effect (WEFT_W_AUTHZ_NO_RULES)', () => {
  assert.deepEqual(warningsOf('  action: DENY\n').map((w) => w.code), ['WEFT_W_AUTHZ_NO_RULES'])
  assert.deepEqual(warningsOf('  action: AUDIT\n  rules: []\n').map((w) => w.code), ['WEFT_W_AUTHZ_NO_RULES'])
  assert.deepEqual(warningsOf('  action: ALLOW\n'), [], 'ALLOW with no rules is the allow-nothing idiom')
})

test('lint: a pattern ending in ".*" reads like a regular expression but is a prefix (WEFT_W_AUTHZ_REGEX_LIKE)', () => {
  const [w] = warningsOf('  action: DENY\n  rules: [{ to: [{ paths: ["/admin/.*"] }] }]\n')
  assert.equal(w!.code, 'WEFT_W_AUTHZ_REGEX_LIKE')
  assert.equal(w!.path, 'spec.rules[0].to[0].paths[0]')
  assert.match(w!.message, /is the prefix "\/admin\/\.", not a regular expression; for everything under it write "\/admin\/\*"/)
})

test('ignorePathCase is a boolean, kept on the settings when true', () => {
  assert.equal(check('  ignorePathCase: true\n  rules: [{ to: [{ paths: ["/admin"] }] }]\n').authorization[0]!.ignorePathCase, true)
  assert.equal(check('  ignorePathCase: false\n').authorization[0]!.ignorePathCase, undefined)
  assert.match(errorsOf('  ignorePathCase: yes please\n')[0]!.message, /true or false/)
})

test('header and claim values may be unquoted scalars; other fields need strings', () => {
  const p = check('  rules: [{ when: [{ key: "request.headers[x-beta]", values: [true, 1] }] }]\n')
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.authorization[0]!.rules[0]!.when[0]!.values, ['true', '1'])
  assert.match(errorsOf('  rules: [{ from: [{ namespaces: [1] }] }]\n')[0]!.message, /non-empty string/)
})

test('fuzz (B1): mutated policies never throw; every error has a location; whatever validates also compiles', async () => {
  const { compileAuthz } = await import('../../src/authz/index.js')
  const seed = `apiVersion: weft/v1
kind: AuthorizationPolicy
metadata: { name: p }
spec:
  service: payments
  action: DENY
  ignorePathCase: true
  rules:
    - from: [{ principals: ["spiffe://weft.local/ns/default/sa/a"], notNamespaces: [shop] }, { source: { requestPrincipals: ["*"] } }]
      to: [{ methods: [POST], paths: ["/admin/*", "*.env"], ports: [8080] }, { operation: { notPaths: ["/x"] } }]
      when: [{ key: "request.auth.claims[scope]", values: ["a", "b*"] }, { key: "request.headers[host]", notValues: [payments] }]
    - {}
`
  const pieces = ['', ' ', '\n', ':', '{', '}', '[', ']', '-', '"', '*', '/', '%2F', '..', '[x]', 'null', '0', '~', '#', 'notPaths', 'key', 'values', 'source', '\u0000', 'ALLOW', 'spiffe://']
  let s = 99
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32)
  let compiled = 0
  for (let i = 0; i < 300; i++) {
    let text = seed
    for (let e = 0, n = next() < 0.7 ? 1 : 2; e < n; e++) {
      const at = Math.floor(next() * text.length)
      text = text.slice(0, at) + pieces[Math.floor(next() * pieces.length)] + text.slice(at + Math.floor(next() * 3))
    }
    const p = validatePolicy(loadText(text, 'f.yaml'))
    for (const issue of p.issues) assert.ok(issue.line !== undefined && issue.path !== undefined, JSON.stringify(issue))
    if (!p.issues.some((x) => x.severity === 'error') && p.authorization.length > 0) {
      assert.doesNotThrow(() => compileAuthz(p.authorization, { service: 'payments', namespace: 'default' }), text)
      compiled++
    }
  }
  assert.ok(compiled > 10, `only ${compiled} mutants validated`)
})
