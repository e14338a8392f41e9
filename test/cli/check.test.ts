import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'

const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' })

test('weft check -f validates offline: findings with codes and line:column, exit 1 on errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-check-'))
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec:\n  loadBalancer: { policy: random }\n')
  const r = cli(['check', '-f', bad])
  assert.equal(r.status, 1)
  assert.match(r.stdout, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:27 error WEFT_E_FIELD_INVALID Service/payments spec\\.loadBalancer\\.policy: must be one of`))
  const good = join(dir, 'good.yaml')
  writeFileSync(good, 'apiVersion: weft/v1\nkind: Service\nmetadata: { name: payments }\nspec: { endpoints: [{ address: "127.0.0.1:1" }] }\n')
  const ok = cli(['check', '-f', good])
  assert.equal(ok.status, 0)
  assert.match(ok.stdout, /1 services, 0 routes, 0 errors, 0 warnings/)
})

test('weft with an unknown command exits 2 with usage', () => {
  const r = cli(['frobnicate'])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /unknown command "frobnicate"/)
})

test('weft check on deeply nested YAML/JSON (the review inputs): exit 1 with one clear finding, no crash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-check-'))
  for (const [name, text] of [['flow.yaml', '['.repeat(500_000)], ['block.yaml', '- '.repeat(300_000)], ['deep.json', '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000)]] as const) {
    const file = join(dir, name)
    writeFileSync(file, text)
    const r = cli(['check', '-f', file])
    assert.equal(r.status, 1, r.stderr)
    assert.equal(r.signal, null)
    assert.match(r.stdout, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:\\d+ error WEFT_E_SYNTAX -: nested more than 64 levels deep; refused before parsing`))
    assert.match(r.stdout, /0 services, 0 routes, 1 errors, 0 warnings/)
  }
})
