// SMI TrafficSplit (with an HTTPRouteGroup) loaded from YAML as the SMI spec writes it, translated
// into a Weft Route (config/translate), against real node:http servers.
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import type { Mesh } from '../../src/index.js'
import { quietMesh } from '../helpers/mesh.js'
import { startUpstream, type Upstream } from '../helpers/upstream.js'

const dir = mkdtempSync(join(tmpdir(), 'weft-smi-'))
let ups: Record<string, Upstream>
let mesh: Mesh

before(async () => {
  ups = {}
  for (const name of ['website', 'website-v1', 'website-v2', 'foobar-v1', 'foobar-v2']) ups[name] = await startUpstream(name)
  const services = Object.values(ups).map((u) => `apiVersion: weft/v1\nkind: Service\nmetadata: { name: ${u.name} }\nspec: { endpoints: [{ address: "${u.address}" }] }\n---\n`)
  // foobar, the canary's root service, has no endpoints of its own: every call is split.
  services.push('apiVersion: weft/v1\nkind: Service\nmetadata: { name: foobar }\nspec: { endpoints: [] }\n---\n')
  const file = join(dir, 'mesh.yaml')
  writeFileSync(file, services.join('') + readFileSync(new URL('../fixtures/translate/smi-split.yaml', import.meta.url), 'utf8'))
  mesh = await quietMesh(file)
})
after(async () => {
  await mesh.close()
  for (const u of Object.values(ups)) await u.close()
  rmSync(dir, { recursive: true, force: true })
})

const body = async (url: string, headers: Record<string, string> = {}) => {
  const res = await mesh.request(url, { headers })
  assert.equal(res.statusCode, 200)
  return res.body.text()
}

test('A/B TrafficSplit: requests the HTTPRouteGroup matches (Firefox) go to website-v2; the rest to the root service', async () => {
  for (let i = 0; i < 10; i++) {
    assert.equal(await body('http://website/', { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0' }), 'ok from website-v2')
    assert.equal(await body('http://website/', { 'user-agent': 'curl/8.11' }), 'ok from website')
  }
  assert.equal(ups['website-v1']!.hits, 0, 'weight 0')
})

test('canary TrafficSplit: weights 1000:500 send a third of 1,500 calls to foobar-v2', async () => {
  let v2 = 0
  for (let batch = 0; batch < 30; batch++) {
    const got = await Promise.all(Array.from({ length: 50 }, () => body('http://foobar/')))
    v2 += got.filter((b) => b === 'ok from foobar-v2').length
  }
  // 1,500 draws at p = 1/3: mean 500, sd ~18.3; ±5 sd.
  assert.ok(v2 >= 409 && v2 <= 591, `foobar-v2 served ${v2}`)
})
