// RELIABILITY B5, "CI fails on Node versions below the patched lines": the running node has the
// HTTP/2 Rapid Reset fix (CVE-2023-44487: node 18.18.2 / 20.8.1, nghttp2 1.57.0, the reset limiter
// the B5 gRPC tests see close a flooding connection) and is at least package.json's engines
// minimum, and that minimum allows nothing older than 20.18. A CI image on an older node fails here.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'

type Version = [number, number, number]

function parse(v: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v)
  assert.ok(m, `a version: ${v}`)
  return [Number(m[1]), Number(m[2]), Number(m[3])]
}

function atLeast(v: Version, min: Version): boolean {
  for (let i = 0; i < 3; i++) if (v[i] !== min[i]) return v[i]! > min[i]!
  return true
}

/** The first release of each line with the Rapid Reset fix; lines after 20 shipped with it. */
const RAPID_RESET_FIXED: Record<number, Version> = { 18: [18, 18, 2], 20: [20, 8, 1] }

function hasRapidResetFix(v: Version): boolean {
  if (v[0] > 20) return true
  const fixed = RAPID_RESET_FIXED[v[0]]
  return fixed !== undefined && atLeast(v, fixed)
}

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines?: { node?: string } }

test('the patched lines: 18.18.2 and 20.8.1 and later have the fix; 20.8.0, 18.18.1, 19.x and 16.x do not', () => {
  for (const v of ['18.18.2', '20.8.1', '20.18.1', '20.20.2', '21.0.0', '22.1.0']) assert.ok(hasRapidResetFix(parse(v)), v)
  for (const v of ['18.18.1', '20.8.0', '19.9.0', '16.20.2']) assert.ok(!hasRapidResetFix(parse(v)), v)
})

test('the running node has the HTTP/2 Rapid Reset fix (CVE-2023-44487) and nghttp2 ≥ 1.57.0', () => {
  assert.ok(hasRapidResetFix(parse(process.versions.node)), `node ${process.versions.node} is below the patched lines (18.18.2, 20.8.1)`)
  assert.ok(atLeast(parse(process.versions.nghttp2 ?? '0.0.0'), [1, 57, 0]), `nghttp2 ${process.versions.nghttp2} has no stream reset limiter (1.57.0)`)
})

test('package.json engines.node allows nothing older than 20.18, and the running node satisfies it', () => {
  const range = pkg.engines?.node
  assert.equal(typeof range, 'string', 'package.json has engines.node')
  const m = /^>=\s*(\d+\.\d+\.\d+)$/.exec(range!.trim())
  assert.ok(m, `engines.node is a single ">=x.y.z" lower bound (got ${JSON.stringify(range)})`)
  const min = parse(m[1]!)
  assert.ok(atLeast(min, [20, 18, 0]), `engines.node's minimum ${m[1]} is older than 20.18`)
  assert.ok(hasRapidResetFix(min), `engines.node's minimum ${m[1]} lacks the Rapid Reset fix`)
  assert.ok(atLeast(parse(process.versions.node), min), `node ${process.versions.node} is below engines.node ${range}`)
})
