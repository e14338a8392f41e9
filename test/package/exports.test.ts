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
