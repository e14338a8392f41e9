// `weft check -o yaml`: the Weft resources an SMI / Gateway API file stands for, printed so what the
// mesh will run is never a guess; the printed YAML is itself a valid Weft policy.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { loadText } from '../../src/config/load.js'
import { validatePolicy } from '../../src/config/validate.js'
import { cli, writeFile } from './kit.js'

const SERVICES = ['payments', 'payments-next', 'payments-shadow'].map((n) =>
  `apiVersion: weft/v1\nkind: Service\nmetadata: { name: ${n} }\nspec: { endpoints: [{ address: "127.0.0.1:1" }] }\n---\n`).join('')

test('weft check -o yaml prints the Route an HTTPRoute becomes (findings on stderr); the output checks clean and means the same', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-check-translate-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const file = writeFile(dir, 'routes.yaml', SERVICES + readFileSync(new URL('../fixtures/translate/httproute-gamma.yaml', import.meta.url), 'utf8'))
  const run = await cli(['check', '-f', file, '-o', 'yaml'])
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stderr, `${file}: 3 services, 1 routes, 0 errors, 0 warnings\n`)
  assert.match(run.stdout, new RegExp(`# from HTTPRoute/payments-canary in ${file}\napiVersion: weft/v1\nkind: Route\n`))
  const printed = validatePolicy(loadText(run.stdout, 'printed.yaml'))
  assert.deepEqual(printed.issues, [])
  assert.deepEqual(printed.routes, validatePolicy(loadText(readFileSync(file, 'utf8'))).routes.map((r) => ({ ...r })))

  const bad = writeFile(dir, 'bad.yaml', SERVICES + 'apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: { name: edge }\nspec:\n  parentRefs: [{ name: gw }]\n')
  const refused = await cli(['check', '-f', bad, '-o', 'yaml'])
  assert.equal(refused.status, 1)
  assert.equal(refused.stdout, '', 'nothing printed for a file with errors')
  assert.match(refused.stderr, /bad\.yaml:20:24 error WEFT_E_TRANSLATE_UNSUPPORTED HTTPRoute\/edge spec\.parentRefs\[0\]\.name: the parent is a gateway\.networking\.k8s\.io Gateway/)
  assert.equal((await cli(['check', '-f', file, '-o', 'json'])).status, 2, 'only yaml')
})
