import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'

// @grpc/grpc-js is an optional peer dependency. A child process in which it cannot be resolved
// imports the built package: HTTP meshes work, and mesh.grpc says what to install.
test('weft imports and runs without @grpc/grpc-js; mesh.grpc then names the missing package', () => {
  const hide = fileURLToPath(new URL('../fixtures/hide-grpc.cjs', import.meta.url))
  const script = `
    const { createMesh } = await import('weft')
    let hidden = false
    const { createRequire } = await import('node:module')
    try { createRequire(process.cwd() + '/')('@grpc/grpc-js') } catch { hidden = true }
    const mesh = await createMesh({ service: 'a', logger: { info() {}, warn() {}, error() {} }, config: [] })
    let error
    try { mesh.grpc } catch (e) { error = { code: e.code, message: e.message } }
    await mesh.close()
    console.log(JSON.stringify({ hidden, error }))`
  const r = spawnSync(process.execPath, ['--require', hide, '--input-type=module', '-e', script], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  assert.equal(out.hidden, true, 'the child cannot load @grpc/grpc-js')
  assert.equal(out.error.code, 'WEFT_ERR_INVALID_ARG')
  assert.match(out.error.message, /install it next to weft \(npm install @grpc\/grpc-js\)/)
})
