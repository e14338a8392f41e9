// One daemon per data dir: a stale lock (its process gone) is taken over by exactly one of several
// daemons starting at once — none removes the lock another has just taken.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { test } from 'node:test'
import { lockDir, LOCK_FILE } from '../../src/daemon/dir-lock.js'

const FIXTURE = resolve(import.meta.dirname, '../fixtures/lock-taker.ts')

/** A pid no process has (a finished child's). */
async function deadPid(): Promise<number> {
  const c = spawn(process.execPath, ['-e', ''])
  await new Promise((r) => c.once('exit', r))
  return c.pid!
}

test('a stale lock raced by 4 starting processes: exactly one gets it', async () => {
  for (let round = 0; round < 3; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'weft-lock-'))
    writeFileSync(join(dir, LOCK_FILE), `${await deadPid()}\n`)
    const kids = Array.from({ length: 4 }, () => spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, DIR: dir, HOLD_MS: '1500' }, stdio: ['pipe', 'pipe', 'inherit'] }))
    const outs = kids.map((k) => new Promise<string>((ok) => {
      let out = ''
      k.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d))
      k.once('exit', () => ok(out.trim()))
    }))
    // Each child needs a moment to load; then all start at once.
    await new Promise((r) => setTimeout(r, 1500))
    for (const k of kids) k.stdin!.end('go\n')
    const results = await Promise.all(outs)
    assert.deepEqual(results.filter((r) => r === 'got').length, 1, `round ${round}: ${results.join(', ')}`)
    assert.deepEqual(results.filter((r) => r !== 'got' && r !== 'busy'), [])
    assert.deepEqual(readdirSync(dir).filter((n) => n !== LOCK_FILE), [], 'no takeover file left')
  }
})

test('a live lock refuses with the pid; release removes only its own lock', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-lock-'))
  const unlock = await lockDir(dir)
  await assert.rejects(lockDir(dir), /data dir .* is in use by another daemon \(pid \d+\)/)
  await unlock()
  const again = await lockDir(dir)
  await again()
})
