// RELIABILITY B1's regression half: every input in test/fuzz/corpus/<target>/ — the seeds, and each
// fuzzer finding once fixed — runs through its target on every `npm test`: no exception outside
// the target's contract, no broken property, none slower than 1 s. The fuzzer itself is
// `npm run fuzz` (scripts/fuzz.ts; CI runs it for 5 minutes a target).
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { TARGETS } from './targets.js'

const CORPUS = join(import.meta.dirname, 'corpus')

for (const target of TARGETS) {
  test(`fuzz corpus of ${target.name}: every input keeps the contract, each within 1 s`, () => {
    const files = readdirSync(join(CORPUS, target.name)).sort()
    assert.ok(files.length >= 2, `${target.name} has seeds`)
    for (const f of files) {
      const input = readFileSync(join(CORPUS, target.name, f), 'utf8')
      const t0 = performance.now()
      assert.doesNotThrow(() => target.run(input), `${target.name}/${f}`)
      const ms = performance.now() - t0
      assert.ok(ms < 1_000, `${target.name}/${f} took ${Math.round(ms)} ms`)
    }
  })
}
