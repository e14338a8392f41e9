// The last good view from the daemon, kept in stateDir so an instance that starts while the
// daemon is down serves what it served before (static stability). One file per service; written
// atomically after each applied view (never a NACKed one), at most one write in flight.
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../util/atomic-file.js'
import type { Logger } from '../util/logger.js'
import type { ControlView } from './client.js'

interface CacheFile {
  weftCache: 1
  service: string
  savedAt: string
  daemon: string
  view: ControlView
}

export class StateCache {
  readonly file: string
  private pending: { view: ControlView; daemon: string } | undefined
  private writing: Promise<void> | undefined

  constructor(dir: string, readonly service: string, private readonly logger: Logger) {
    this.file = join(dir, `control-${service}.json`)
    mkdirSync(dir, { recursive: true })
  }

  /** The cached view, or undefined (no file, or a file that is not ours or does not parse). */
  read(): (ControlView & { savedAt: string }) | undefined {
    let text: string
    try {
      text = readFileSync(this.file, 'utf8')
    } catch {
      return undefined
    }
    try {
      const c = JSON.parse(text) as CacheFile
      if (c.weftCache !== 1 || c.service !== this.service || typeof c.view?.version !== 'number' || !Array.isArray(c.view.resources)) throw new Error('not a weft control cache')
      return { ...c.view, savedAt: c.savedAt }
    } catch (err) {
      this.logger.warn(`control: ignoring cached snapshot ${this.file}: ${(err as Error).message}`)
      return undefined
    }
  }

  /** Saves a view; a newer one replaces a pending one, so bursts cost one write. */
  save(view: ControlView, daemon: string): Promise<void> {
    this.pending = { view, daemon }
    return (this.writing ??= this.drain())
  }

  /** Waits for the pending write (mesh.close). */
  flush(): Promise<void> {
    return this.writing ?? Promise.resolve()
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const { view, daemon } = this.pending
      this.pending = undefined
      const file: CacheFile = { weftCache: 1, service: this.service, savedAt: new Date().toISOString(), daemon, view }
      await writeFileAtomic(this.file, JSON.stringify(file)).catch((err: Error) => {
        this.logger.warn(`control: could not write ${this.file}: ${err.message}`)
      })
    }
    this.writing = undefined
  }
}
