// The watch stream's line splitter: lines cut anywhere (even inside a UTF-8 character), a cap
// counted in bytes, and linear time in the line length (a long line is not re-scanned per chunk).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { NdjsonLines } from '../../src/control/ndjson.js'

test('lines split across chunks, several per chunk, a character cut between chunks, empty lines skipped', () => {
  const text = Buffer.from('{"a":"é€"}\n\n{"b":1}\n{"c":"😀"}\n{"d":')
  const lines = new NdjsonLines()
  const out: string[] = []
  // One byte at a time cuts every multi-byte character.
  for (let i = 0; i < text.length; i++) out.push(...lines.push(text.subarray(i, i + 1)))
  assert.deepEqual(out, ['{"a":"é€"}', '{"b":1}', '{"c":"😀"}'])
  assert.deepEqual(lines.push(Buffer.from('2}\n')), ['{"d":2}'])
  assert.deepEqual(new NdjsonLines().push(Buffer.from('x\ny\nz')), ['x', 'y'])
})

test('the cap counts bytes, not characters, and a line at the cap is taken', () => {
  // 4 characters of 3 bytes each: 12 bytes.
  assert.throws(() => new NdjsonLines(11).push(Buffer.from('€€€€')), /longer than 11 bytes/)
  assert.deepEqual(new NdjsonLines(12).push(Buffer.from('€€€€\n')), ['€€€€'])
  // Over the cap across chunks, before any newline arrives.
  const lines = new NdjsonLines(1024)
  lines.push(Buffer.alloc(1000, 0x61))
  assert.throws(() => lines.push(Buffer.alloc(100, 0x61)), /longer than 1024 bytes/)
})

test('a 16 MiB line in 64 KiB chunks is split in linear time', () => {
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  const lines = new NdjsonLines(32 * 1024 * 1024)
  const t0 = performance.now()
  for (let i = 0; i < 256; i++) assert.deepEqual(lines.push(chunk), [])
  const [line] = lines.push(Buffer.from('\n'))
  const ms = performance.now() - t0
  assert.equal(line!.length, 16 * 1024 * 1024)
  // Re-splitting the whole partial line per chunk took ~7 s here; linear is tens of ms.
  assert.ok(ms < 1500, `took ${ms.toFixed(0)} ms`)
})
