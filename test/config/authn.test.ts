import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { formatIssue, validatePolicy } from '../../src/config/validate.js'
import type { ConfigIssue } from '../../src/config/types.js'

const SERVICE = 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { endpoints: [{ address: "127.0.0.1:8081" }] }\n---\n'
const doc = (spec: string) => `${SERVICE}apiVersion: weft/v1\nkind: RequestAuthentication\nmetadata: { name: users }\nspec:\n${spec}`
const check = (spec: string) => validatePolicy(loadText(doc(spec), 'f.yaml'))
const errorsOf = (spec: string) => check(spec).issues.filter((i) => i.severity === 'error')
const warningsOf = (spec: string) => check(spec).issues.filter((i) => i.severity === 'warning')
/** Line of `spec:` in doc(), so a test can say which line of its spec it means. */
const SPEC_LINE = 9
const at = (i: ConfigIssue | undefined) => `${i?.path} ${i?.line}:${i?.column}`

/** A rule with every required field, plus `extra` lines (indented under the rule). */
const rule = (extra = '', head = '    - issuer: https://issuer.example\n      jwksUri: https://issuer.example/jwks.json\n') =>
  `  service: payments\n  jwtRules:\n${head}      audiences: [payments]\n      algorithms: [ES256]\n${extra}`

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const EC_JWK = { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1' }
const RSA_JWK = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: 'rsa-1' }
const inline = (keys: unknown[]) => `    - issuer: https://issuer.example\n      jwks: ${JSON.stringify({ keys })}\n`

test('the ARCHITECTURE §4 example validates into RequestAuthSettings with its defaults', () => {
  const p = check(`  service: payments
  jwtRules:
    - issuer: https://issuer.example
      jwksUri: https://issuer.example/.well-known/jwks.json
      audiences: [payments]
      algorithms: [ES256, RS256]
      fromHeaders: [{ name: authorization, prefix: "Bearer " }]
`)
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.requestAuthentication, [{
    name: 'users', namespace: 'default', service: 'payments', order: 1,
    jwtRules: [{
      issuer: 'https://issuer.example', jwksUri: 'https://issuer.example/.well-known/jwks.json', audiences: ['payments'],
      algorithms: ['ES256', 'RS256'], fromHeaders: [{ name: 'authorization', prefix: 'Bearer ' }], fromCookies: [], fromParams: [],
      clockToleranceMs: 30_000,
    }],
  }])
})

test('no location given: the Authorization bearer header (Istio default); any location given replaces it; no query default', () => {
  assert.deepEqual(check(rule()).requestAuthentication[0]!.jwtRules[0]!.fromHeaders, [{ name: 'authorization', prefix: 'Bearer ' }])
  const r = check(rule('      fromCookies: [session]\n      fromParams: [access_token]\n')).requestAuthentication[0]!.jwtRules[0]!
  assert.deepEqual([r.fromHeaders, r.fromCookies, r.fromParams], [[], ['session'], ['access_token']])
  const h = check(rule('      fromHeaders: [{ name: X-Token }]\n')).requestAuthentication[0]!.jwtRules[0]!
  assert.deepEqual(h.fromHeaders, [{ name: 'x-token', prefix: '' }], 'header names are lowercased; prefix defaults to ""')
})

test('a spec with no service selects the whole namespace; an unknown service is a warning (registry-only services)', () => {
  const p = check(rule().replace('  service: payments\n', ''))
  assert.deepEqual(p.issues, [])
  assert.equal(p.requestAuthentication[0]!.service, undefined)
  const [w] = warningsOf(rule().replace('service: payments', 'service: ledger'))
  assert.equal(w!.code, 'WEFT_W_SERVICE_UNKNOWN')
  assert.equal(at(w), `spec.service ${SPEC_LINE + 1}:12`)
  assert.equal(check(rule().replace('service: payments', 'service: ledger')).requestAuthentication.length, 1)
})

test('algorithms: none and HS* are refused saying why; unknown names and wrong case are errors; required and non-empty', () => {
  const errs = errorsOf(rule().replace('[ES256]', '[ES256, none, HS256, hs512, es384, ES256K]'))
  assert.deepEqual(errs.map((e) => [e.code, e.path]), [
    ['WEFT_E_AUTHN_ALGORITHM', 'spec.jwtRules[0].algorithms[1]'],
    ['WEFT_E_AUTHN_ALGORITHM', 'spec.jwtRules[0].algorithms[2]'],
    ['WEFT_E_AUTHN_ALGORITHM', 'spec.jwtRules[0].algorithms[3]'],
    ['WEFT_E_AUTHN_ALGORITHM', 'spec.jwtRules[0].algorithms[4]'],
    ['WEFT_E_AUTHN_ALGORITHM', 'spec.jwtRules[0].algorithms[5]'],
  ])
  assert.match(errs[0]!.message, /unsigned.*never accepted/)
  assert.match(errs[1]!.message, /shared-secret.*takes no shared secrets/)
  assert.match(errs[2]!.message, /shared-secret/)
  assert.match(errs[3]!.message, /write "ES384"/)
  assert.match(errs[4]!.message, /not a supported algorithm/)
  assert.equal(`${errs[1]!.line}:${errs[1]!.column}`, `${SPEC_LINE + 6}:33`)
  const [missing] = errorsOf(rule().replace('      algorithms: [ES256]\n', ''))
  assert.equal(missing!.code, 'WEFT_E_FIELD_REQUIRED')
  assert.match(missing!.message, /pin the algorithms/)
  assert.equal(errorsOf(rule().replace('[ES256]', '[]'))[0]!.path, 'spec.jwtRules[0].algorithms')
  assert.equal(check(rule().replace('[ES256]', '[ES256, ES256, EdDSA]')).requestAuthentication[0]!.jwtRules[0]!.algorithms.join(), 'ES256,EdDSA')
})

test('audiences are required and non-empty (RELIABILITY J4)', () => {
  const [missing] = errorsOf(rule().replace('      audiences: [payments]\n', ''))
  assert.equal(at(missing), `spec.jwtRules[0].audiences ${SPEC_LINE + 3}:7`)
  assert.match(missing!.message, /token minted for another service/)
  const [empty] = errorsOf(rule().replace('[payments]', '[]'))
  assert.equal(empty!.path, 'spec.jwtRules[0].audiences')
  assert.equal(errorsOf(rule().replace('[payments]', '[payments, ""]'))[0]!.path, 'spec.jwtRules[0].audiences[1]')
})

test('issuer is required; exactly one of jwksUri or jwks', () => {
  const [noIssuer] = errorsOf(rule('', '    - jwksUri: https://issuer.example/jwks.json\n'))
  assert.equal(at(noIssuer), `spec.jwtRules[0].issuer ${SPEC_LINE + 3}:7`)
  const [neither] = errorsOf(rule('', '    - issuer: https://issuer.example\n'))
  assert.equal(neither!.path, 'spec.jwtRules[0]')
  assert.match(neither!.message, /needs jwksUri .* or jwks/)
  const [both] = errorsOf(rule(`      jwks: ${JSON.stringify({ keys: [EC_JWK] })}\n`))
  assert.match(both!.message, /either jwksUri or jwks, not both/)
})

test('jwksUri: an http(s) URL without credentials or fragment; plain http off loopback is a warning', () => {
  const uri = (u: string) => rule('', `    - issuer: https://issuer.example\n      jwksUri: "${u}"\n`)
  assert.match(errorsOf(uri('not a url'))[0]!.message, /is not a URL/)
  assert.match(errorsOf(uri('ftp://issuer.example/jwks'))[0]!.message, /http or https/)
  assert.match(errorsOf(uri('https://user:pw@issuer.example/jwks'))[0]!.message, /credentials/)
  assert.match(errorsOf(uri('https://issuer.example/jwks#x'))[0]!.message, /fragment/)
  const [w] = warningsOf(uri('http://issuer.example/jwks'))
  assert.equal(w!.code, 'WEFT_W_JWKS_INSECURE')
  assert.equal(at(w), `spec.jwtRules[0].jwksUri ${SPEC_LINE + 4}:16`)
  assert.deepEqual(check(uri('http://127.0.0.1:9000/jwks')).issues, [])
})

test('inline jwks: parsed at validation, as an object or as a JSON string (Istio form)', () => {
  const p = check(rule('', inline([EC_JWK, { ...RSA_JWK, x5c: ['MIIB...'], alg: 'RS256' }])).replace('[ES256]', '[ES256, RS256]'))
  assert.deepEqual(p.issues, [])
  const keys = p.requestAuthentication[0]!.jwtRules[0]!.jwks!.keys
  assert.deepEqual(keys.map((k) => k.kid), ['ec-1', 'rsa-1'])
  assert.equal('x5c' in keys[1]!, false, 'members a verifier does not use are dropped')
  const asString = check(rule('', `    - issuer: https://issuer.example\n      jwks: '${JSON.stringify({ keys: [EC_JWK] })}'\n`))
  assert.deepEqual(asString.issues, [])
  assert.equal(asString.requestAuthentication[0]!.jwtRules[0]!.jwks!.keys[0]!.kid, 'ec-1')
  assert.match(errorsOf(rule('', `    - issuer: https://issuer.example\n      jwks: '{ nope'\n`))[0]!.message, /not JSON/)
})

test('inline jwks: a bad key is a config error at its path (shared secrets, private keys, weak RSA, bad points)', () => {
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' })
  const cases: [unknown, string, RegExp][] = [
    [{ kty: 'oct', k: 'c2VjcmV0' }, 'keys[0].kty', /shared secret/],
    [{ ...ec.privateKey.export({ format: 'jwk' }) }, 'keys[0].d', /private key material/],
    [{ x: EC_JWK.x }, 'keys[0].kty', /is required/],
    [{ ...EC_JWK, y: undefined }, 'keys[0].y', /is required/],
    [{ ...EC_JWK, x: 'AAAA' + EC_JWK.x!.slice(4) }, 'keys[0]', /not a valid EC public key/],
    [{ ...EC_JWK, crv: 'secp256k1' }, 'keys[0].crv', /not supported/],
    [{ ...weak, kid: 'weak' }, 'keys[0].n', /1024 bits is too weak/],
    [{ ...EC_JWK, use: 'enc' }, 'keys[0].use', /use "sig"/],
    [{ ...EC_JWK, alg: 'RS256' }, 'keys[0].alg', /cannot be used with a EC P-256 key/],
    [{ ...EC_JWK, alg: 'HS256' }, 'keys[0].alg', /shared-secret/],
    [{ ...EC_JWK, key_ops: ['encrypt'] }, 'keys[0].key_ops', /verify/],
    [{ ...EC_JWK, kid: 'k'.repeat(300) }, 'keys[0].kid', /at most 256/],
  ]
  for (const [key, path, message] of cases) {
    const errs = errorsOf(rule('', inline([key])))
    assert.equal(errs[0]?.path, `spec.jwtRules[0].jwks.${path}`, `${JSON.stringify(key).slice(0, 60)}: ${errs.map(formatIssue).join('; ')}`)
    assert.match(errs[0]!.message, message)
  }
  assert.match(errorsOf(rule('', inline([EC_JWK, EC_JWK])))[0]!.message, /used by an earlier key/)
  assert.equal(errorsOf(rule('', inline([])))[0]!.path, 'spec.jwtRules[0].jwks.keys')
  const [none] = errorsOf(rule('', inline([RSA_JWK])))
  assert.match(none!.message, /no key in this set can verify ES256/)
  // The set is the issuer's document (RFC 7517): members other than keys are ignored, not errors.
  assert.deepEqual(errorsOf(rule('', `    - issuer: https://issuer.example\n      jwks: ${JSON.stringify({ keys: [EC_JWK], issuer_meta: 1 })}\n`)), [])
  assert.match(errorsOf(rule('', '    - issuer: https://issuer.example\n      jwks: [1]\n'))[0]!.message, /must be a JWK set/)
})

test('clockTolerance: a duration, default 30s, at most 5m', () => {
  assert.equal(check(rule('      clockTolerance: 1m\n')).requestAuthentication[0]!.jwtRules[0]!.clockToleranceMs, 60_000)
  assert.equal(check(rule('      clockTolerance: 0s\n')).requestAuthentication[0]!.jwtRules[0]!.clockToleranceMs, 0)
  const [tooBig] = errorsOf(rule('      clockTolerance: 10m\n'))
  assert.equal(at(tooBig), `spec.jwtRules[0].clockTolerance ${SPEC_LINE + 7}:23`)
  assert.match(tooBig!.message, /at most 5m .*fix the clocks/)
  assert.match(errorsOf(rule('      clockTolerance: soon\n'))[0]!.message, /must be a duration/)
})

test('tokenTypes (RELIABILITY J6): optional; an empty list is an error at its line:column; entries are media types; kept as written, deduplicated ignoring case and application/', () => {
  assert.equal('tokenTypes' in check(rule()).requestAuthentication[0]!.jwtRules[0]!, false, 'absent: no field, typ unchecked')
  const p = check(rule('      tokenTypes: [at+jwt, application/AT+JWT, JWT]\n'))
  assert.deepEqual(p.issues, [])
  assert.deepEqual(p.requestAuthentication[0]!.jwtRules[0]!.tokenTypes, ['at+jwt', 'JWT'])
  const [empty, ...rest] = errorsOf(rule('      tokenTypes: []\n'))
  assert.deepEqual(rest, [])
  assert.equal(at(empty), `spec.jwtRules[0].tokenTypes ${SPEC_LINE + 7}:19`)
  assert.match(empty!.message, /empty list.*for example \[at\+jwt\].*remove the field/)
  assert.match(formatIssue(empty!), /^f\.yaml:16:19 error .*RequestAuthentication\/users spec\.jwtRules\[0\]\.tokenTypes: is an empty list/)
  assert.deepEqual(check(rule('      tokenTypes: []\n')).requestAuthentication, [], 'no settings from a resource with an error')
  const bad: [string, string, RegExp][] = [
    ['[at+jwt, ""]', 'tokenTypes[1]', /non-empty string/],
    ['["at jwt"]', 'tokenTypes[0]', /not a token type/],
    ['["application/"]', 'tokenTypes[0]', /not a token type/],
    ['["at+jwt; charset=utf-8"]', 'tokenTypes[0]', /no spaces or parameters/],
    ['["at+jwt\\u0007"]', 'tokenTypes[0]', /control characters/],
    ['[1]', 'tokenTypes[0]', /non-empty string/],
    ['at+jwt', 'tokenTypes', /list/],
  ]
  for (const [value, path, message] of bad) {
    const errs = errorsOf(rule(`      tokenTypes: ${value}\n`))
    assert.equal(errs[0]?.path, `spec.jwtRules[0].${path}`, `${value}: ${errs.map(formatIssue).join('; ')}`)
    assert.match(errs[0]!.message, message, value)
  }
})

test('token locations: header names are tokens, cookies go in fromCookies, an Authorization header without prefix warns', () => {
  assert.match(errorsOf(rule('      fromHeaders: [{ name: cookie }]\n'))[0]!.message, /fromCookies/)
  assert.equal(errorsOf(rule('      fromHeaders: [{ name: "x token" }]\n'))[0]!.path, 'spec.jwtRules[0].fromHeaders[0].name')
  assert.equal(errorsOf(rule('      fromHeaders: [{ prefix: "Bearer " }]\n'))[0]!.code, 'WEFT_E_FIELD_REQUIRED')
  assert.equal(errorsOf(rule('      fromCookies: ["a;b"]\n'))[0]!.path, 'spec.jwtRules[0].fromCookies[0]')
  assert.equal(errorsOf(rule('      fromParams: []\n'))[0]!.path, 'spec.jwtRules[0].fromParams')
  const [w] = warningsOf(rule('      fromHeaders: [{ name: Authorization }]\n'))
  assert.equal(w!.code, 'WEFT_W_AUTHN_NO_PREFIX')
})

test('unknown fields are errors everywhere (fail closed), with line:column', () => {
  const errs = errorsOf(rule('      forwardOriginalToken: true\n      fromHeaders: [{ name: x-jwt, prefix: "", value: 1 }]\n') + '  selector: { app: payments }\n')
  assert.deepEqual(errs.map((e) => [e.code, e.path]), [
    ['WEFT_E_FIELD_UNKNOWN', 'spec.selector'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.jwtRules[0].forwardOriginalToken'],
    ['WEFT_E_FIELD_UNKNOWN', 'spec.jwtRules[0].fromHeaders[0].value'],
  ])
  assert.match(errs[1]!.message, /allowed: issuer, jwksUri, jwks, audiences, algorithms/)
  assert.match(formatIssue(errs[1]!), /^f\.yaml:16:\d+ error WEFT_E_FIELD_UNKNOWN RequestAuthentication\/users spec\.jwtRules\[0\]\.forwardOriginalToken/)
})

test('a resource with any error yields no settings; jwtRules is required and non-empty; spec is required', () => {
  const p = check(rule().replace('[ES256]', '[HS256]'))
  assert.deepEqual(p.requestAuthentication, [])
  assert.equal(errorsOf('  service: payments\n')[0]!.path, 'spec.jwtRules')
  assert.equal(errorsOf('  jwtRules: []\n')[0]!.code, 'WEFT_E_FIELD_REQUIRED')
  const bare = validatePolicy(loadText(`${SERVICE}apiVersion: weft/v1\nkind: RequestAuthentication\nmetadata: { name: users }\n`, 'f.yaml'))
  assert.equal(bare.issues.find((i) => i.severity === 'error')!.path, 'spec')
})

test('two rules for one issuer: a warning (the first that verifies wins)', () => {
  const second = '    - issuer: https://issuer.example\n      jwksUri: https://issuer.example/other.json\n      audiences: [payments]\n      algorithms: [RS256]\n'
  const p = check(rule() + second)
  assert.deepEqual(p.issues.map((i) => [i.code, i.path]), [['WEFT_W_AUTHN_DUPLICATE_ISSUER', 'spec.jwtRules[1].issuer']])
  assert.equal(p.requestAuthentication[0]!.jwtRules.length, 2)
})
