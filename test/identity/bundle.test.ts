import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { test } from 'node:test'
import { isWeftError } from '../../src/errors/index.js'
import { addRoot, hasRoot, newBundle, newerBundle, parseBundle, removeRoot } from '../../src/identity/bundle.js'
import { CertificateAuthority } from '../../src/identity/ca.js'
import { forge } from './pki.js'

const TD = 'weft.local'
const opts = { timeout: 5000 }
const roots = Promise.all([CertificateAuthority.createRoot({ trustDomain: TD }), CertificateAuthority.createRoot({ trustDomain: TD })])
  .then(([a, b]) => ({ a: a.toPem(), b: b.toPem() }))

test('newBundle keeps canonical PEM, drops duplicates (any PEM spelling) and freezes the result', opts, async () => {
  const { a, b } = await roots
  const crlf = a.certPem.replace(/\n/g, '\r\n')
  const bundle = newBundle(TD, [a.certPem, crlf, b.certPem])
  assert.deepEqual(bundle, { trustDomain: TD, sequence: 1, roots: [a.certPem, b.certPem] })
  assert.ok(Object.isFrozen(bundle) && Object.isFrozen(bundle.roots))
  assert.ok(hasRoot(bundle, crlf))
})

test('a bundle refuses an empty root list, a non-CA root, a bad sequence and a bad trust domain', opts, async () => {
  const { a } = await roots
  const leaf = await forge(a, { uris: ['spiffe://weft.local/x'] })
  const cases: Array<[() => unknown, RegExp]> = [
    [() => newBundle(TD, []), /non-empty list/],
    [() => newBundle(TD, [leaf.certPem]), /roots\[0\] is not a CA certificate/],
    [() => newBundle(TD, ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n']), /roots\[0\] is not a readable certificate/],
    [() => newBundle(TD, ['hello']), /roots\[0\] must be a PEM certificate/],
    [() => newBundle(TD, [a.certPem], -1), /sequence must be a non-negative integer/],
    [() => newBundle(TD, [a.certPem], 1.5), /sequence/],
    [() => newBundle('TD', [a.certPem]), /invalid trust domain/],
  ]
  for (const [make, reason] of cases) assert.throws(make, (err: unknown) => isWeftError(err, 'WEFT_ERR_INVALID_ARG') && reason.test(err.message), String(reason))
})

test('parseBundle reads the wire form and refuses unknown fields and wrong types', opts, async () => {
  const { a } = await roots
  const wire = JSON.parse(JSON.stringify(newBundle(TD, [a.certPem], 4)))
  assert.deepEqual(parseBundle(wire), newBundle(TD, [a.certPem], 4))
  assert.throws(() => parseBundle({ ...wire, extra: 1 }), /unknown field extra/)
  assert.throws(() => parseBundle({ ...wire, sequence: '4' }), /sequence must be a number/)
  assert.throws(() => parseBundle({ ...wire, roots: [1] }), /roots must be a list of PEM strings/)
  assert.throws(() => parseBundle(null), /expected an object/)
})

test('newerBundle takes a higher sequence and ignores a lower or equal one, or another trust domain (F13)', opts, async () => {
  const { a, b } = await roots
  const held = newBundle(TD, [a.certPem], 5)
  const newer = newBundle(TD, [a.certPem, b.certPem], 6)
  assert.equal(newerBundle(undefined, held), held)
  assert.equal(newerBundle(held, newer), newer)
  assert.equal(newerBundle(newer, held), undefined, 'a lower sequence is a stale push')
  assert.equal(newerBundle(held, newBundle(TD, [b.certPem], 5)), undefined, 'an equal sequence changes nothing')
  const otherRoot = (await CertificateAuthority.createRoot({ trustDomain: 'other.td' })).toPem()
  assert.equal(newerBundle(held, newBundle('other.td', [otherRoot.certPem], 99)), undefined)
})

test('rotation: addRoot and removeRoot bump the sequence; no-ops return the same bundle', opts, async () => {
  const { a, b } = await roots
  const start = newBundle(TD, [a.certPem], 3)
  const both = addRoot(start, b.certPem)
  assert.deepEqual(both.roots, [a.certPem, b.certPem])
  assert.equal(both.sequence, 4)
  assert.equal(addRoot(both, b.certPem), both)
  const retired = removeRoot(both, new X509Certificate(a.certPem).toString().replace(/\n/g, '\r\n'))
  assert.deepEqual(retired.roots, [b.certPem])
  assert.equal(retired.sequence, 5)
  assert.equal(removeRoot(retired, a.certPem), retired)
  assert.equal(newerBundle(retired, both), undefined, 'the pre-retire bundle, replayed, is ignored')
  assert.throws(() => removeRoot(retired, b.certPem), /cannot remove the last root/)
})
