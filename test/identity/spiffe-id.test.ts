import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isWeftError } from '../../src/errors/index.js'
import {
  isTrustDomainId, parseSpiffeId, sameSpiffeId, trustDomainId, trySpiffeId, validTrustDomain, workloadId, workloadOf,
} from '../../src/identity/spiffe-id.js'

const VALID: Array<[string, string, string]> = [
  // [id, trustDomain, path]
  ['spiffe://weft.local/ns/default/sa/payments', 'weft.local', '/ns/default/sa/payments'],
  ['spiffe://td', 'td', ''],
  ['spiffe://a-b_c.d9/Path.With-Caps_0/x', 'a-b_c.d9', '/Path.With-Caps_0/x'],
  ['spiffe://td/...', 'td', '/...'],
  ['spiffe://td/a.b/..c', 'td', '/a.b/..c'],
  [`spiffe://${'a'.repeat(255)}/x`, 'a'.repeat(255), '/x'],
  [`spiffe://td/${'p'.repeat(2048 - 'spiffe://td/'.length)}`, 'td', `/${'p'.repeat(2048 - 'spiffe://td/'.length)}`],
]

const INVALID: Array<[string, RegExp]> = [
  ['', /scheme/],
  ['weft.local/ns/default/sa/payments', /scheme/],
  ['https://td/x', /scheme/],
  ['SPIFFE://td/x', /scheme must be lowercase/],
  ['spiffe:/td/x', /scheme/],
  ['spiffe://', /trust domain is empty/],
  ['spiffe:///x', /trust domain is empty/],
  ['spiffe://TD/x', /must be lowercase/],
  ['spiffe://Weft.local/ns/a/sa/b', /must be lowercase/],
  ['spiffe://td/a//b', /empty path segment/],
  ['spiffe://td/', /empty path segment/],
  ['spiffe://td/a/', /empty path segment/],
  ['spiffe://td/./x', /"\." path segments/],
  ['spiffe://td/a/..', /"\.\." path segments/],
  ['spiffe://td/a/../b', /"\.\." path segments/],
  ['spiffe://td/%2e', /percent-encoding/],
  ['spiffe://t%64/x', /percent-encoding/],
  ['spiffe://td/a%2Fb', /percent-encoding/],
  ['spiffe://td:443/x', /port/],
  ['spiffe://td:/x', /port/],
  ['spiffe://u@td/x', /userinfo/],
  ['spiffe://u:p@td/x', /userinfo/],
  ['spiffe://td/x?y=1', /query/],
  ['spiffe://td?x', /query/],
  ['spiffe://td/x#frag', /fragment/],
  ['spiffe://td/a b', /path segments may only contain/],
  ['spiffe://td/a+b', /path segments may only contain/],
  ['spiffe://td/é', /path segments may only contain/],
  ['spiffe://t d/x', /may only contain \[a-z0-9\._-\]/],
  ['spiffe://td\n/x', /may only contain/],
  ['spiffe://[::1]/x', /may only contain/],
  [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
  [`spiffe://td/${'p'.repeat(2049 - 'spiffe://td/'.length)}`, /longer than 2048 bytes/],
  // 2048 characters but 2049 bytes: the limit is in bytes.
  [`spiffe://td/${'p'.repeat(2047 - 'spiffe://td/'.length)}é`, /longer than 2048 bytes/],
]

test('valid SPIFFE IDs parse into trust domain and path, and print back unchanged', () => {
  for (const [text, trustDomain, path] of VALID) {
    const id = parseSpiffeId(text)
    assert.equal(id.trustDomain, trustDomain, text)
    assert.equal(id.path, path, text)
    assert.equal(id.toString(), text)
    assert.equal(JSON.stringify({ id }), JSON.stringify({ id: text }))
    assert.ok(trySpiffeId(text))
  }
})

test('invalid SPIFFE IDs throw WEFT_ERR_INVALID_ARG naming the rule, and trySpiffeId returns undefined', () => {
  for (const [text, reason] of INVALID) {
    assert.throws(() => parseSpiffeId(text), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && reason.test(err.message), `${JSON.stringify(text.slice(0, 40))} should fail with ${reason}`)
    assert.equal(trySpiffeId(text), undefined, text.slice(0, 40))
  }
})

test('a non-string is not a SPIFFE ID', () => {
  assert.equal(trySpiffeId(undefined as unknown as string), undefined)
  assert.throws(() => parseSpiffeId(42 as unknown as string), /not a string/)
})

test('messages quote the input with control characters escaped and long input cut', () => {
  assert.throws(() => parseSpiffeId('spiffe://td\n/x'), (err: Error) => err.message.includes('"spiffe://td\\n/x"'))
  assert.throws(() => parseSpiffeId(`spiffe://td/${'x'.repeat(5000)}`), (err: Error) => err.message.length < 300)
})

test('spiffe://td is a trust-domain ID: valid, but not a workload ID', () => {
  const id = parseSpiffeId('spiffe://td')
  assert.ok(isTrustDomainId(id))
  assert.equal(workloadOf(id), undefined)
  assert.ok(sameSpiffeId(id, trustDomainId('td')))
  assert.ok(!isTrustDomainId(parseSpiffeId('spiffe://td/x')))
})

test('IDs compare as parsed values: same trust domain and path', () => {
  const a = parseSpiffeId('spiffe://weft.local/ns/default/sa/payments')
  assert.ok(sameSpiffeId(a, workloadId('weft.local', 'default', 'payments')))
  assert.ok(!sameSpiffeId(a, parseSpiffeId('spiffe://weft.local/ns/default/sa/Payments')), 'paths are case-sensitive')
  assert.ok(!sameSpiffeId(a, parseSpiffeId('spiffe://weft.localx/ns/default/sa/payments')))
  assert.ok(!sameSpiffeId(a, parseSpiffeId('spiffe://weft.local/ns/default/sa/payments/x')), 'no prefix matching')
  assert.ok(!sameSpiffeId(parseSpiffeId('spiffe://a.b/c'), parseSpiffeId('spiffe://a/b.c')))
})

test('workloadId builds spiffe://td/ns/<ns>/sa/<svc> and workloadOf reads it back', () => {
  const id = workloadId('weft.local', 'shop', 'payments')
  assert.equal(id.toString(), 'spiffe://weft.local/ns/shop/sa/payments')
  assert.deepEqual(workloadOf(id), { namespace: 'shop', service: 'payments' })
  assert.equal(workloadOf(parseSpiffeId('spiffe://td/ns/shop/sa/payments/extra')), undefined)
  assert.equal(workloadOf(parseSpiffeId('spiffe://td/ns/shop/svc/payments')), undefined)
  assert.equal(workloadOf(parseSpiffeId('spiffe://td/sa/payments')), undefined)
})

test('workloadId refuses a namespace or service that is not one path segment', () => {
  for (const [ns, svc, where] of [['a/b', 'x', 'namespace'], ['', 'x', 'namespace'], ['ns', '..', 'service'], ['ns', 'a%2f', 'service'], ['ns', 'a?b', 'service']] as const) {
    assert.throws(() => workloadId('td', ns, svc), (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && err.message.includes(where), `${ns}/${svc}`)
  }
  assert.throws(() => workloadId('TD', 'a', 'b'), /trust domain "TD": the trust domain must be lowercase/)
})

test('validTrustDomain accepts [a-z0-9._-]{1,255} only', () => {
  assert.equal(validTrustDomain('weft.local'), 'weft.local')
  for (const td of ['', 'Weft', 'td:1', 'a/b', 'x'.repeat(256), 'u@td']) assert.throws(() => validTrustDomain(td), /invalid trust domain/, td)
})

test('parsed IDs are immutable', () => {
  const id = parseSpiffeId('spiffe://td/x')
  assert.throws(() => {
    ;(id as { trustDomain: string }).trustDomain = 'evil'
  }, TypeError)
})
