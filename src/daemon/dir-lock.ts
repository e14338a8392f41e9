// One daemon per data dir: two embedded stores on the same files would each keep their own policy
// version and overwrite the other's writes. The lock is a file made with O_EXCL holding the pid and
// a random nonce; a lock whose process is gone (a crash, kill -9) is stale and taken over.
//
// The lock appears whole: it is written to a file of its own first and then hard-linked to the lock
// name (link fails if the name exists, like O_EXCL). Created empty and written after, another
// daemon could read it in between, see no pid, judge it stale and take it over (seen here: two
// holders of one dir in a race of four).
//
// Taking over must not remove a lock another process has just taken (two starting daemons both
// finding the same stale lock: the second's rm would delete the first's fresh one). Takeovers run
// one at a time under a second O_EXCL file, and remove the lock only if it still holds exactly
// what was judged stale; a plain O_EXCL create can only succeed once the lock is gone, so whoever
// creates it first holds it and the others see a live lock.
import { randomBytes } from 'node:crypto'
import { link, open, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

const held = new Set<string>()

export const LOCK_FILE = 'daemon.lock'

export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE)
  const mine = `${process.pid}\n${randomBytes(8).toString('hex')}\n`
  for (let attempt = 0; ; attempt++) {
    try {
      await createWhole(file, mine)
      held.add(file)
      return async () => {
        held.delete(file)
        // Only our own lock (never one another process took over after a pid check went wrong).
        if ((await readFile(file, 'utf8').catch(() => '')) === mine) await rm(file, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 50) throw err
    }
    const seen = await readFile(file, 'utf8').catch(() => undefined)
    if (seen === undefined) continue // released meanwhile: try again
    const pid = Number(seen.split('\n')[0]!.trim())
    if (held.has(file) || (pid !== process.pid && alive(pid))) {
      throw new Error(`data dir ${dir} is in use by another daemon (pid ${pid || '?'}); if that process is gone, remove ${file}`)
    }
    // Stale: its process is gone (or is this process after a pid reuse, without holding it).
    await takeOver(file, seen)
  }
}

/** Creates `file` holding `text`, or fails with EEXIST; no reader ever sees it partly written. */
async function createWhole(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  await writeFile(tmp, text, { mode: 0o600, flag: 'wx' })
  try {
    await link(tmp, file)
  } finally {
    await rm(tmp, { force: true })
  }
}

/** A takeover file older than this was left by a crash mid-takeover (they last milliseconds). */
const TAKEOVER_STALE_MS = 10_000

/** Removes the stale lock `seen`, unless it changed meanwhile (then the caller looks again). */
async function takeOver(file: string, seen: string): Promise<void> {
  const guard = `${file}.takeover`
  let fh
  try {
    fh = await open(guard, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const age = Date.now() - ((await stat(guard).catch(() => undefined))?.mtimeMs ?? Date.now())
    if (age > TAKEOVER_STALE_MS) await rm(guard, { force: true })
    else await new Promise((r) => setTimeout(r, 20)) // another takeover is under way
    return
  }
  try {
    if ((await readFile(file, 'utf8').catch(() => undefined)) === seen) await rm(file, { force: true })
  } finally {
    await fh.close()
    await rm(guard, { force: true })
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
