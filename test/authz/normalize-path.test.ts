import assert from 'node:assert/strict'
import { posix } from 'node:path'
import { test } from 'node:test'
import { normalizeHost, normalizePath } from '../../src/authz/index.js'
import { valueError } from '../../src/config/validate-authz.js'

test('normalisation: query/fragment, decoding, backslashes, merged slashes, dot segments', () => {
  const cases: [string, string | undefined][] = [
    ['/', '/'],
    ['/charge', '/charge'],
    ['/charge?amount=1', '/charge'],
    ['/charge#top', '/charge'],
    ['/a?b#c', '/a'],
    ['/a#b?c', '/a'],
    ['//a///b//', '/a/b/'],
    ['/a\\b', '/a/b'],
    ['/a%2Fb', '/a/b'],
    ['/a%2fb', '/a/b'],
    ['/a%5Cb', '/a/b'],
    ['/a%5cb', '/a/b'],
    ['/%61%62%63', '/abc'],
    ['/%7E%2D%2E%5F', '/~-._'],
    ['/a%2ab', '/a%2Ab'],
    ['/a%20b', '/a%20b'],
    ['/a%252Fb', '/a%252Fb'], // decoded once only
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/..', '/'],
    ['/../../a', '/a'],
    ['/a/%2e%2E/b', '/b'],
    ['/a/.%2e/b', '/b'],
    ['/a/..%2fb', '/b'],
    ['/a/..\\b', '/b'],
    ['/a/..b/.b./...', '/a/..b/.b./...'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..//b', '/b'],
    ['/é', '/é'],
    ['http://payments/admin?x', '/admin'],
    ['HTTPS://payments:8443//admin', '/admin'],
    ['http://payments', '/'],
    ['http://payments?x=/admin', '/'],
  ]
  for (const [raw, want] of cases) assert.equal(normalizePath(raw), want, raw)
})

test('refused (the engine denies with path-invalid): bad escapes, NUL and control characters, other target forms, ambiguous ".."', () => {
  for (const raw of ['/a%', '/a%4', '/a%zz', '/a%4g', '/a%00', '/a%00b', '/a\u0000', '/a\nb', '/a\tb', '/a\u007f', '*', 'admin', '', 'payments:443',
    'ftp://x/admin', 'http://x%2F/admin', 'http://x\\y/admin', '/a//../b', '//../admin', '/a/%2F/../b', '/a\\\\..\\b']) {
    assert.equal(normalizePath(raw), undefined, JSON.stringify(raw))
  }
  // A refused character after the query does not matter: the query is not part of the path.
  assert.equal(normalizePath('/a?%zz\u0000'), '/a')
})

// A small seeded generator over an alphabet chosen so that every rule meets every other often.
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32
  }
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!

function randomPath(r: () => number, pieces: readonly string[]): string {
  let s = '/'
  const n = 1 + Math.floor(r() * 7)
  for (let i = 0; i < n; i++) s += pick(r, pieces)
  return s
}

const PIECES = ['a', 'b', '/', '/', '.', '..', '\\', '%2e', '%2E', '%2f', '%5C', '%61', '%2a', '%20', '%25', '%zz', '%0', '?', '#', 'A', '~']

test('properties on 20,000 random paths: idempotent, and the output is a path the validator accepts and matches against', () => {
  const r = random(7)
  for (let i = 0; i < 20_000; i++) {
    const raw = randomPath(r, PIECES)
    const out = normalizePath(raw)
    if (out === undefined) continue
    assert.equal(normalizePath(out), out, `not idempotent: ${JSON.stringify(raw)} → ${JSON.stringify(out)}`)
    assert.doesNotMatch(out, /\/\/|\/\.\.?(\/|$)|\\|[?#]|%(2[fF]|5[cC]|[0-9a-f][a-f]|[a-f][0-9a-f])/, `${JSON.stringify(raw)} → ${JSON.stringify(out)}`)
    assert.equal(valueError('path', out), undefined, `the validator refuses the normalised form ${JSON.stringify(out)} of ${JSON.stringify(raw)}`)
  }
})

test('the validator accepts exactly the paths that normalise to themselves (a policy path it accepts can match)', () => {
  const r = random(11)
  for (let i = 0; i < 20_000; i++) {
    const raw = randomPath(r, PIECES)
    const accepted = valueError('path', raw) === undefined
    assert.equal(accepted, normalizePath(raw) === raw, JSON.stringify(raw))
  }
})

test('dot segments resolve as Node path.posix.normalize and the WHATWG URL parser do, where they agree', () => {
  const r = random(13)
  let compared = 0
  for (let i = 0; i < 20_000; i++) {
    const raw = randomPath(r, ['a', 'b', '/', '.', '..', '\\', '/..', '/.'])
    const ours = normalizePath(raw)
    const whatwg = new URL('http://x' + raw).pathname
    const viaPosix = posix.normalize(raw.replace(/\\/g, '/'))
    if (ours === undefined) {
      // Refused only when a ".." follows an empty segment: the two readings can then differ.
      assert.match(raw.replace(/\\/g, '/'), /\/\/+(.*\/)?\.\.(\/|$)/, JSON.stringify(raw))
      continue
    }
    const strip = (s: string) => (s.length > 1 ? s.replace(/\/+$/, '') : s)
    assert.equal(strip(ours), strip(viaPosix), `posix: ${JSON.stringify(raw)}`)
    // Node 20.20's URL parser (ada 2.9.2) leaves some dot segments unresolved ("/x/.a/." stays so):
    // compare only where it resolved them all.
    const whatwgResolved = !/\/\.\.?(\/|$)/.test(whatwg)
    if (!raw.replace(/\\/g, '/').includes('//') && whatwgResolved) {
      assert.equal(ours, whatwg, `WHATWG: ${JSON.stringify(raw)}`)
      compared++
    }
  }
  assert.ok(compared > 5000)
})

test('Host: lowercase, without port or trailing dot; unchanged input is returned as is', () => {
  assert.equal(normalizeHost('payments.default'), 'payments.default')
  assert.equal(normalizeHost('PAYMENTS.Default'), 'payments.default')
  assert.equal(normalizeHost('payments.default.'), 'payments.default')
  assert.equal(normalizeHost('payments.default:8080'), 'payments.default')
  assert.equal(normalizeHost('Payments.:80'), 'payments')
  assert.equal(normalizeHost('[::1]:8080'), '[::1]')
  assert.equal(normalizeHost('[::1]'), '[::1]')
})
