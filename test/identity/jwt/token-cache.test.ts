// The verified-token cache keyed by the end of the signature: a hit only for the very token that
// verified, expiry, the bound, and tokens sharing an ending.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { KEY_CHARS, VerifiedTokenCache } from '../../../src/identity/jwt/token-cache.js'

const END = 'abcdefghijklmnopqrstuv'
const token = (body: string, end = END) => `eyJhbGciOiJFUzI1NiJ9.${body}.sig${end}`

test('a hit needs the whole token: another token with the same signature ending is a miss', () => {
  assert.equal(END.length, KEY_CHARS)
  const cache = new VerifiedTokenCache<string>(10, 60_000)
  const good = token('eyJzdWIiOiJhbGljZSJ9')
  cache.set(good, 'alice', 0, 2_000_000_000, 1_000)
  assert.equal(cache.get(good, 1_000)?.value, 'alice')
  assert.equal(cache.get([...good].join(''), 1_000)?.value, 'alice', 'an equal string made apart still hits')
  const forged = token('eyJzdWIiOiJtYWxsb3J5In0', END)
  assert.equal(cache.get(forged, 1_000), undefined, 'a forged payload behind a copied signature ending is not the cached token')
  assert.equal(cache.get(good, 1_000)?.value, 'alice', 'and the miss leaves the real entry in place')
})

test('two verified tokens that share an ending replace each other; neither answers for the other', () => {
  const cache = new VerifiedTokenCache<string>(10, 60_000)
  const a = token('eyJzdWIiOiJhIn0')
  const b = token('eyJzdWIiOiJiIn0')
  cache.set(a, 'a', 0, 2_000_000_000, 0)
  cache.set(b, 'b', 0, 2_000_000_000, 0)
  assert.equal(cache.size, 1)
  assert.equal(cache.get(a, 0), undefined)
  assert.equal(cache.get(b, 0)?.value, 'b')
})

test('entries expire at min(exp, verified + max age); the oldest goes first past the bound; short tokens work', () => {
  const cache = new VerifiedTokenCache<string>(2, 60_000)
  const t1 = token('eyJhIjoxfQ', 'A'.repeat(KEY_CHARS))
  cache.set(t1, 'one', 0, 10, 0) // exp 10 s
  assert.equal(cache.get(t1, 9_999)?.value, 'one')
  assert.equal(cache.get(t1, 10_000), undefined, 'expired at exp')
  assert.equal(cache.size, 0, 'and dropped')
  const t2 = token('eyJhIjoyfQ', 'B'.repeat(KEY_CHARS))
  cache.set(t2, 'two', 0, 2_000_000_000, 0)
  assert.equal(cache.get(t2, 60_000), undefined, 'max age 60 s')
  const [x, y, z] = ['C', 'D', 'E'].map((c) => token('eyJhIjozfQ', c.repeat(KEY_CHARS)))
  for (const t of [x!, y!, z!]) cache.set(t, t, 0, 2_000_000_000, 100_000)
  assert.equal(cache.size, 2)
  assert.equal(cache.get(x!, 100_000), undefined, 'the oldest was dropped')
  assert.ok(cache.get(z!, 100_000))
  const short = 'a.b.c'
  cache.set(short, 'short', 1, 2_000_000_000, 100_000)
  assert.equal(cache.get(short, 100_000)?.rule, 1)
})

test('size 0 keeps nothing', () => {
  const cache = new VerifiedTokenCache<string>(0, 60_000)
  cache.set(token('e30'), 'x', 0, 2_000_000_000, 0)
  assert.equal(cache.size, 0)
})
