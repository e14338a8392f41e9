import assert from 'node:assert/strict'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createMesh, isWeftError, type ConfigEvent, type Mesh, type WeftError } from '../../src/index.js'
import { capturingLogger, metricValue } from '../helpers/mesh.js'
import { startUpstream } from '../helpers/upstream.js'

const yamlFor = (address: string, extra = '') => `apiVersion: weft/v1
kind: Service
metadata:
  name: payments
spec:
  endpoints:
    - address: ${address}
${extra}`

function next<T>(mesh: Mesh, event: 'config' | 'configError'): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${event} event within 5s`)), 5000)
    mesh.once(event, (v: T) => {
      clearTimeout(t)
      resolve(v)
    })
  })
}

test('the config file is watched: a valid change is a new version, an invalid one is rejected with line:column while the old version serves', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-watch-'))
  const file = join(dir, 'weft.yaml')
  const a = await startUpstream('a')
  const b = await startUpstream('b')
  const log = capturingLogger()
  await writeFile(file, yamlFor(a.address))
  const mesh = await createMesh({ service: 'checkout', config: file, logger: log })
  try {
    assert.equal(mesh.configVersion, 1)
    assert.equal(await (await mesh.request('http://payments/x')).body.text(), 'ok from a')

    // Invalid edit: a bad duration on line 8, column 12.
    const rejected = next<WeftError>(mesh, 'configError')
    await writeFile(file, yamlFor(a.address, '  timeout: whenever\n'))
    const err = await rejected
    assert.ok(isWeftError(err, 'WEFT_ERR_POLICY_INVALID'))
    assert.match(err.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:12 error WEFT_E_FIELD_INVALID Service/payments spec\\.timeout`))
    assert.match(log.lines.join('\n'), /config rejected; still serving version 1/)
    const metrics = await mesh.metrics()
    assert.equal(metricValue(metrics, 'weft_config_rejected_total', { source: 'file' }), 1)
    assert.equal(metricValue(metrics, 'weft_config_source', { source: 'static' }), 1)
    assert.equal(metricValue(metrics, 'weft_config_source', { source: 'daemon' }), 0)
    assert.equal(mesh.configVersion, 1)
    assert.equal(await (await mesh.request('http://payments/x')).body.text(), 'ok from a', 'the previous version keeps serving')

    // Valid edit, written the way editors do (temp file + rename): endpoints move to b.
    const applied = next<ConfigEvent>(mesh, 'config')
    await writeFile(join(dir, 'weft.yaml.tmp'), yamlFor(b.address))
    await rename(join(dir, 'weft.yaml.tmp'), file)
    assert.equal((await applied).version, 2)
    assert.equal(await (await mesh.request('http://payments/x')).body.text(), 'ok from b')
    assert.equal(metricValue(await mesh.metrics(), 'weft_config_version'), 2)
  } finally {
    await mesh.close()
    await a.close()
    await b.close()
    await rm(dir, { recursive: true, force: true })
  }
})

test('state survives a new config version: the breaker stays open when its settings are unchanged', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-watch-'))
  const file = join(dir, 'weft.yaml')
  const a = await startUpstream('a', (_req, res) => {
    res.statusCode = 500
    res.end()
  })
  const breaker = '  retries: { attempts: 0 }\n  circuitBreaker: { consecutiveFailures: 2, halfOpenAfter: 1m }\n'
  await writeFile(file, yamlFor(a.address, breaker))
  const mesh = await createMesh({ service: 'checkout', config: file, logger: capturingLogger() })
  try {
    for (let i = 0; i < 2; i++) await (await mesh.request('http://payments/x')).body.dump()
    await assert.rejects(mesh.request('http://payments/x'), (e: unknown) => isWeftError(e, 'WEFT_ERR_CIRCUIT_OPEN'))
    const applied = next<ConfigEvent>(mesh, 'config')
    await writeFile(file, yamlFor(a.address, breaker + '  timeout: 3s\n'))
    await applied
    await assert.rejects(mesh.request('http://payments/x'), (e: unknown) => isWeftError(e, 'WEFT_ERR_CIRCUIT_OPEN'))
  } finally {
    await mesh.close()
    await a.close()
    await rm(dir, { recursive: true, force: true })
  }
})
