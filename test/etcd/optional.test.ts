import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'

// etcd3 is an optional peer dependency. In a child process where it cannot be resolved, weft's
// root module and the etcd store's module both load; creating an etcd store says what to install.
test('weft loads without etcd3; createEtcdStore then names the missing package', () => {
  const hide = fileURLToPath(new URL('./hide-etcd3.cjs', import.meta.url))
  const root = fileURLToPath(new URL('../../src/index.ts', import.meta.url))
  const store = fileURLToPath(new URL('../../adapters/etcd/etcd-store.ts', import.meta.url))
  const script = `
    const { createRequire } = await import('node:module')
    let hidden = false
    try { createRequire(process.cwd() + '/')('etcd3') } catch { hidden = true }
    const { createMesh } = await import(${JSON.stringify(root)})
    const mesh = await createMesh({ service: 'a', logger: { info() {}, warn() {}, error() {} }, config: [] })
    await mesh.close()
    const { createEtcdStore } = await import(${JSON.stringify(store)})
    let error
    try { createEtcdStore({ endpoints: ['http://127.0.0.1:2379'] }) } catch (e) { error = { code: e.code, message: e.message } }
    console.log(JSON.stringify({ hidden, error }))`
  const r = spawnSync(process.execPath, ['--require', hide, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
  assert.equal(out.hidden, true, 'the child cannot load etcd3')
  assert.equal(out.error?.code, 'WEFT_ERR_INVALID_ARG')
  assert.match(out.error.message, /install etcd3 next to weft to use --etcd/)
})
