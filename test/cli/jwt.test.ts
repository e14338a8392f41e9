// `weft jwt keys|rotate|retire [--force]` against a real daemon.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { cli, startCliDaemon, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
})
after(() => d.close())

test('weft jwt keys shows the signing key; rotate adds one, published at once, which signs from its activation; retire is refused (exit 1, saying until when) without --force, done with it', async () => {
  const k = await cli(['jwt', 'keys', ...d.flags])
  assert.equal(k.status, 0, k.stderr)
  assert.match(k.stdout, /^issuer spiffe:\/\/weft\.local\nKID +STATE\n\S+ +signing\n$/)
  const r = await cli(['jwt', 'rotate', '-o', 'json', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  const rotated = JSON.parse(r.stdout) as { kid: string; signingKid: string; previousKid: string; activatesAt: string; jwks: { keys: { kid: string }[] } }
  assert.deepEqual(rotated.jwks.keys.map((x) => x.kid), [rotated.kid, rotated.previousKid])
  assert.equal(rotated.signingKid, rotated.previousKid, 'the old key signs until the activation')
  assert.match(r.stderr, new RegExp(`keeps signing until ${rotated.activatesAt}.*weft jwt retire`))
  const table = await cli(['jwt', 'keys', ...d.flags])
  const at = rotated.activatesAt.replace(/[.]/g, '\\.')
  assert.match(table.stdout, new RegExp(`\\n${rotated.kid} +prepared \\(published; signs from ${at}\\)\\n${rotated.previousKid} +signing\\nrotated .*; the new key signs from ${at}; retire from `))
  const early = await cli(['jwt', 'retire', ...d.flags])
  assert.equal(early.status, 1)
  assert.match(early.stderr, /may still be valid until .*--force/)
  const forced = await cli(['jwt', 'retire', '--force', '-o', 'json', ...d.flags])
  assert.equal(forced.status, 0, forced.stderr)
  assert.deepEqual((JSON.parse(forced.stdout) as { jwks: { keys: { kid: string }[] } }).jwks.keys.map((x) => x.kid), [rotated.kid])
  const bad = await cli(['jwt', 'rotate', '--force', ...d.flags])
  assert.equal(bad.status, 2, '--force is for retire only')
  const u = await cli(['jwt', 'burn', ...d.flags])
  assert.equal(u.status, 2)
  assert.match(u.stderr, /weft jwt keys\|rotate\|retire/)
})
