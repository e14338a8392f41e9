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
    const kids = Array.from({ length: 4 }, () => spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, DIR: dir }, stdio: ['pipe', 'pipe', 'inherit'] }))
    // Each taker's answer (its first line); a holder keeps the lock until every taker has answered.
    const answers = kids.map((k) => new Promise<string>((ok) => {
      let out = ''
      k.stdout!.setEncoding('utf8').on('data', (d: string) => {
        out += d
        if (out.includes('\n')) ok(out.split('\n')[0]!.trim())
      })
      k.once('exit', () => ok(out.trim()))
    }))
    const exits = kids.map((k) => new Promise((ok) => k.once('exit', ok)))
    // A busy taker has exited by the time "release" is written to it: EPIPE there is expected.
    for (const k of kids) k.stdin!.on('error', () => {})
    // Each child needs a moment to load; then all start at once (a slow one still races the
    // others for the stale lock, since nobody releases before all have answered).
    await new Promise((r) => setTimeout(r, 1500))
    for (const k of kids) k.stdin!.write('go\n')
    const results = await Promise.all(answers)
    for (const k of kids) k.stdin!.end('release\n')
    await Promise.all(exits)
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
