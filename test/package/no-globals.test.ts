// Importing weft and running a mesh without a daemon changes no process global: the certificate
// code (@peculiar/x509, which installs the reflect-metadata polyfill on Reflect) is loaded only
// by a mesh under a control daemon.
import assert from 'node:assert/strict'
import { test } from 'node:test'

test('a mesh in embedded mode loads no certificate code: Reflect gains no metadata API', async () => {
  const { createMesh } = await import('../../src/index.js')
  const mesh = await createMesh({ service: 'checkout', config: [], logger: { info() {}, warn() {}, error() {} } })
  await mesh.close()
  assert.equal(typeof (Reflect as unknown as { getMetadata?: unknown }).getMetadata, 'undefined')
})
