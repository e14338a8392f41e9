// registry.json for the embedded store: the registrations as they stand, saved so a restarted
// daemon can restore them for one lease TTL. Saves are coalesced (one write per REGISTRY_SAVE_MS at
// most, never on the request path) and one at a time; a save asked for during a write runs after it.
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import type { RegistryFile } from './embedded-files.js'

/** Registry saves are coalesced: one write per this window at most. */
const REGISTRY_SAVE_MS = 100

export class RegistrySaver {
  private timer: NodeJS.Timeout | undefined
  private writing: Promise<void> | undefined
  private again = false

  /** `contents`: the file as it should be now (read at each write). */
  constructor(private readonly file: string, private readonly logger: Logger, private readonly contents: () => RegistryFile) {}

  /** Schedules a save; bursts of registrations cost one write. */
  soon(): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.writing) {
        this.again = true
        return
      }
      this.writing = this.write().finally(() => {
        this.writing = undefined
        if (this.again) {
          this.again = false
          this.soon()
        }
      })
    }, REGISTRY_SAVE_MS)
    this.timer.unref()
  }

  /** At shutdown: no more scheduled saves; waits for one under way, then writes the final state. */
  async flush(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    await this.writing
    await this.write()
  }

  private async write(): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(this.contents()), 0o600).catch((err: Error) => {
      this.logger.warn(`embedded store: could not save ${this.file}: ${err.message}`)
    })
  }
}
