// The embedded store's files: their formats and their checked readers. Apart from embedded-store.ts,
// which holds the store's logic (revisions, leases, the write queue), so that file reads as that.
import { readFile } from 'node:fs/promises'
import type { HistoryEntry, InstanceRecord, JoinToken, StoredResource } from './store.js'

export const FORMAT = 1

export interface PolicyFile {
  format: number
  /** The revision of the last policy write. */
  version: number
  /** The reserved revision high-water mark (see REVISION_BLOCK). */
  revision: number
  resources: StoredResource[]
}

export interface HistoryFile extends HistoryEntry {
  resources: StoredResource[]
}

export interface TokensFile {
  admin?: string
  join: JoinToken[]
}

export interface RegistryFile {
  format: number
  savedAt: string
  instances: InstanceRecord[]
  /** Epoch ms at which each instance not held at save time expires (held ones get a TTL at restore). */
  expires?: Record<string, number>
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  return JSON.parse(text) as T
}

/** The policy file, checked: a damaged one stops the daemon rather than start it with no policy. */
export async function readPolicyFile(file: string): Promise<PolicyFile | undefined> {
  let f: PolicyFile | undefined
  try {
    f = await readJson<PolicyFile>(file)
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message} (the daemon will not start with an unreadable policy; restore the file or move it away)`)
  }
  if (f === undefined) return undefined
  const bad = (why: string) => new Error(`${file} is not a weft policy file: ${why}`)
  if (typeof f !== 'object' || f === null) throw bad('not an object')
  if (typeof f.format === 'number' && f.format > FORMAT) throw bad(`format ${f.format} is newer than this daemon understands (${FORMAT})`)
  if (!Number.isSafeInteger(f.version) || f.version < 0) throw bad('version is not a non-negative integer')
  if (f.revision !== undefined && (!Number.isSafeInteger(f.revision) || f.revision < 0)) throw bad('revision is not a non-negative integer')
  if (!Array.isArray(f.resources)) throw bad('resources is not a list')
  for (const r of f.resources) {
    if (typeof r?.kind !== 'string' || typeof r.namespace !== 'string' || typeof r.name !== 'string' || typeof r.value !== 'object' || r.value === null) throw bad('a resource lacks kind/namespace/name/value')
  }
  return f
}
