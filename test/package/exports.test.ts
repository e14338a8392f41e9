import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { test } from 'node:test'

// The built package as a user imports it (npm ci builds dist/ through `prepare`). Run in a child
// so the imports resolve through package.json "exports", not through this repo's src/.
test('the package exports weft, weft/express and weft/fastify, and the weft bin runs', () => {
  assert.ok(existsSync(new URL('../../dist/index.js', import.meta.url)), 'dist/ is missing: run npm run build (npm ci does it through prepare)')
  const script = `
    const w = await import('weft'); const e = await import('weft/express'); const f = await import('weft/fastify')
    console.log(JSON.stringify({ createMesh: typeof w.createMesh, currentContext: typeof w.currentContext, weft: typeof e.weft, plugin: f.weftPlugin[Symbol.for('plugin-meta')] }))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { createMesh: 'function', currentContext: 'function', weft: 'function', plugin: { name: 'weft', fastify: '5.x' } })
  const bin = spawnSync(process.execPath, ['dist/cli.js', 'version'], { encoding: 'utf8' })
  assert.equal(bin.status, 0, bin.stderr)
  assert.match(bin.stdout, /\d+\.\d+\.\d+/)
})

// CommonJS apps (many Express ones) require() the package: Node ≥ 20.19 loads an ES module through
// require() (require(esm), unflagged), which the "default" export condition reaches; the package has
// no top-level await, which would make require() refuse it. On 20.18 require() says ERR_REQUIRE_ESM.
test('a CommonJS app can require(\'weft\') and require(\'weft/express\') on Node ≥ 20.19', () => {
  const script = `const w = require('weft'); const e = require('weft/express'); const f = require('weft/fastify'); console.log(JSON.stringify([typeof w.createMesh, typeof e.weft, typeof f.weftPlugin]))`
  const r = spawnSync(process.execPath, ['--input-type=commonjs', '-e', script], { encoding: 'utf8' })
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number]
  if (major > 20 || (major === 20 && minor >= 19)) {
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), ['function', 'function', 'function'])
  } else {
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, /ERR_REQUIRE_ESM/)
  }
})
