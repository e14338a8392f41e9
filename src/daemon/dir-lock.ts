// One daemon per data dir: two embedded stores on the same files would each keep their own policy
// version and overwrite the other's writes. The lock is a file made with O_EXCL holding the pid; a
// lock whose process is gone (a crash, kill -9) is stale and taken over.
import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'

const held = new Set<string>()

export const LOCK_FILE = 'daemon.lock'

export async function lockDir(dir: string): Promise<() => Promise<void>> {
  const file = join(dir, LOCK_FILE)
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(file, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      held.add(file)
      return async () => {
        held.delete(file)
        await rm(file, { force: true })
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err
    }
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim())
    if (held.has(file) || (pid !== process.pid && alive(pid))) {
      throw new Error(`data dir ${dir} is in use by another daemon (pid ${pid || '?'}); if that process is gone, remove ${file}`)
    }
    // Stale: its process is gone (or is this process after a pid reuse, without holding it).
    await rm(file, { force: true })
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
