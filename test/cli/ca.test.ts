// `weft ca bundle|rotate|retire` against a real daemon, and `weft daemon` flag checks for the CA.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { cli, startCliDaemon, type CliDaemon } from './kit.js'

let d: CliDaemon
before(async () => {
  d = await startCliDaemon()
})
after(() => d.close())

test('weft ca bundle shows the trust domain and its root; rotate makes two roots, retire one again; a second retire exits 1 saying why', async () => {
  const b = await cli(['ca', 'bundle', ...d.flags])
  assert.equal(b.status, 0, b.stderr)
  assert.match(b.stdout, /^trust domain weft\.local, bundle sequence 1\n/)
  assert.equal(b.stdout.trimEnd().split('\n').length, 3, 'a header and one root')
  const r = await cli(['ca', 'rotate', '-o', 'json', ...d.flags])
  assert.equal(r.status, 0, r.stderr)
  const rotated = JSON.parse(r.stdout) as { sequence: number; roots: string[] }
  assert.equal(rotated.roots.length, 2)
  assert.equal(rotated.sequence, 2)
  assert.match(r.stderr, /weft ca retire/)
  const t = await cli(['ca', 'retire', '-o', 'json', ...d.flags])
  assert.equal(t.status, 0, t.stderr)
  assert.equal((JSON.parse(t.stdout) as { roots: string[] }).roots.length, 1)
  const again = await cli(['ca', 'retire', ...d.flags])
  assert.equal(again.status, 1)
  assert.match(again.stderr, /no rotation under way/)
})

test('weft ca with a wrong subcommand, and weft daemon with half a CA, are usage errors (exit 2)', async () => {
  const u = await cli(['ca', 'burn', ...d.flags])
  assert.equal(u.status, 2)
  assert.match(u.stderr, /weft ca bundle\|rotate\|retire/)
  const half = await cli(['daemon', '--ca-cert', '/nonexistent.pem'])
  assert.equal(half.status, 2)
  assert.match(half.stderr, /--ca-cert and --ca-key go together/)
  const td = await cli(['daemon', '--trust-domain', 'Bad.Domain'])
  assert.equal(td.status, 2)
})
