// ConfigSource: where the embedded policy comes from — a file (YAML or JSON, watched for
// changes) or a JS value. It validates every candidate and hands only valid policies on.
import { watch, type FSWatcher } from 'node:fs'
import { basename, dirname, resolve } from 'node:path'
import { loadFile, loadValue } from './load.js'
import type { MeshPolicy } from './types.js'
import { validatePolicy } from './validate.js'

export type ConfigInput = string | object | object[]

export function readPolicy(input: ConfigInput | undefined): MeshPolicy {
  if (input === undefined) return validatePolicy({ resources: [], issues: [] })
  return validatePolicy(typeof input === 'string' ? loadFile(input) : loadValue(input))
}

/** Watches a config file (through its directory, so editors' rename-on-save is seen). */
export class FileWatcher {
  private watcher: FSWatcher | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(
    readonly file: string,
    private readonly onChange: () => void,
    private readonly debounceMs = 50,
  ) {}

  start(): void {
    const full = resolve(this.file)
    const name = basename(full)
    this.watcher = watch(dirname(full), { persistent: false }, (_event, changed) => {
      if (changed !== null && changed !== name) return
      if (this.timer) clearTimeout(this.timer)
      this.timer = setTimeout(this.onChange, this.debounceMs)
      this.timer.unref()
    })
    this.watcher.on('error', () => {})
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.watcher?.close()
  }
}
