// Crash-safe file writes (the daemon's embedded store, an instance's cached snapshot): temp file in the same directory → fsync → rename
// over the target → fsync the directory. A crash at any point leaves the old file or the new one,
// never a torn one (rename is atomic within one filesystem; the temp file must be on the same one,
// hence the same directory). What a crash can leave is a temp file: removeTempFiles clears those.
import { randomBytes } from 'node:crypto'
import { open, readdir, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/** Temp files are hidden and end in .tmp, so a directory scan never mistakes one for data. */
const TEMP = /^\..+\.tmp$/

export function isTempFile(name: string): boolean {
  return TEMP.test(name)
}

/** Replaces `file` with `data`; `mode` applies to the new file (0o600 for secrets). */
export async function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  // 'wx': a fresh file, so the mode is the one asked for (an existing file keeps its old mode).
  const fh = await open(tmp, 'wx', mode)
  try {
    await fh.writeFile(data)
    await fh.sync()
  } catch (err) {
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  try {
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await syncDir(dir)
}

/** Makes a rename or an unlink in `dir` durable: the directory entry is on disk only after this. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try {
    await d.sync()
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic there.
  } finally {
    await d.close()
  }
}

/** Removes temp files a crash left in `dir` (they are never read: the target is old or new). */
export async function removeTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = []
  for (const name of await readdir(dir)) {
    if (!isTempFile(name)) continue
    await rm(join(dir, name), { force: true })
    removed.push(name)
  }
  return removed
}
