// RELIABILITY S1's static lint: every JWS/JWT verify call in src pins its algorithms, and nothing
// in src uses jose's helpers that take keys from the token (EmbeddedJWK) or fetch on their own.
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** The text of the call starting at `open` (the index of its "("), up to its matching ")". */
function callText(text: string, open: number): string {
  let depth = 0
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++
    else if (text[i] === ')' && --depth === 0) return text.slice(open, i + 1)
  }
  return text.slice(open)
}

test('every jwtVerify / compactVerify / flattenedVerify / generalVerify call in src passes algorithms', () => {
  const calls: string[] = []
  for (const file of sources('src')) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/\b(jwtVerify|compactVerify|flattenedVerify|generalVerify)\s*\(/g)) {
      const call = callText(text, m.index! + m[0].length - 1)
      calls.push(file)
      assert.match(call, /\balgorithms\s*:/, `${file}: ${m[1]} without algorithms (RELIABILITY J1/S1)`)
    }
  }
  assert.ok(calls.length >= 1, 'the lint found the verifier')
})

test('src never uses EmbeddedJWK or createRemoteJWKSet (keys come only from config, fetched by our cache)', () => {
  for (const file of sources('src')) {
    assert.doesNotMatch(readFileSync(file, 'utf8'), /\b(EmbeddedJWK|createRemoteJWKSet)\b/, file)
  }
})
