// Policy changes: apply (upsert by kind/namespace/name, like kubectl apply), delete, rollback.
// Each one validates the WHOLE resulting policy, composed with the current registry the way an
// instance composes it (composeView), with the same validatePolicy as a file: what the daemon
// stores is what every instance will accept. Composition runs without fillRouteTargets, so a Route
// naming a service that is neither declared nor registered is refused here (instances fill it in
// only so that a service whose last instance left does not invalidate their whole view).
// Nothing is stored on an error or when nothing changed; writes are compare-and-set on the policy
// version (another daemon may write the same etcd store), retried once on a conflict.
import { loadText, type RawResource } from '../config/load.js'
import type { ConfigIssue } from '../config/types.js'
import { formatIssue, validatePolicy } from '../config/validate.js'
import { composeView } from '../control/compose.js'
import type { EndpointMap } from '../control/protocol.js'
import { badRequest, HttpError, notFound } from './http-error.js'
import { REVOCATION_KIND } from './revocations.js'
import { Serial } from './serial.js'
import { ConflictError, type HistoryEntry, type Store, type StoredResource } from './store.js'

export interface ResourceKey {
  kind: string
  namespace: string
  name: string
}

export interface Change extends ResourceKey {
  action: 'created' | 'updated' | 'unchanged' | 'deleted'
}

export interface ApplyResult {
  version: number
  changes: Change[]
  warnings: ConfigIssue[]
  dryRun?: true
}

/** One resource of a policy being built: its value and, for one from a request body, its source. */
interface Entry {
  key: ResourceKey | undefined
  value: object
  raw?: RawResource
}

const noLocation = (): undefined => undefined

export class PolicyService {
  /** Changes made through this daemon run one at a time, so only another daemon can conflict. */
  private readonly serial = new Serial()

  constructor(
    private readonly store: Store,
    /** The registry as instances see it, to validate against. */
    private readonly endpoints: () => EndpointMap,
  ) {}

  async list(): Promise<{ version: number; resources: object[] }> {
    const p = await this.store.readPolicy()
    return { version: p.version, resources: p.resources.map((r) => r.value) }
  }

  async history(): Promise<{ entries: HistoryEntry[] }> {
    return { entries: await this.store.history() }
  }

  /** POST /v1/policy: YAML or JSON text, one or many resources. */
  apply(text: string, dryRun: boolean): Promise<ApplyResult> {
    const loaded = loadText(text)
    if (loaded.issues.some((i) => i.severity === 'error')) throw invalid(loaded.issues)
    if (loaded.resources.length === 0) throw badRequest('the body holds no resources (want YAML or JSON: one resource, several documents, or a list)')
    const applied: Entry[] = []
    for (const raw of loaded.resources) {
      let value: unknown
      try {
        value = jsonClone(raw.value)
      } catch (err) {
        throw invalid([{ severity: 'error', code: 'WEFT_E_FIELD_INVALID', resource: `resource #${raw.index + 1}`, path: '', message: `cannot be stored as JSON: ${(err as Error).message}`, ...raw.locate([]) }])
      }
      // Validated with the JSON copy (what is stored and pushed), located in the body's text.
      const entry = { ...raw, value }
      applied.push({ key: keyOf(value), value: value as object, raw: entry })
    }

    return this.change(async () => {
      const current = await this.store.readPolicy()
      const merged: Entry[] = current.resources.map((r) => ({ key: { kind: r.kind, namespace: r.namespace, name: r.name }, value: r.value }))
      const position = new Map(merged.map((e, i) => [keyString(e.key!), i]))
      const taken = new Set<number>()
      const changes: Change[] = []
      for (const a of applied) {
        const pos = a.key ? position.get(keyString(a.key)) : undefined
        if (pos !== undefined && !taken.has(pos)) {
          // Updated in place: the order of resources (which orders Routes) stays as it was.
          changes.push({ ...a.key!, action: canonical(merged[pos]!.value) === canonical(a.value) ? 'unchanged' : 'updated' })
          merged[pos] = a
          taken.add(pos)
        } else {
          // New, or a second copy in the same body (then validation reports the duplicate).
          merged.push(a)
          taken.add(merged.length - 1)
          if (a.key) {
            position.set(keyString(a.key), merged.length - 1)
            changes.push({ ...a.key, action: 'created' })
          }
        }
      }
      const issues = this.validate(merged)
      const warnings = issues.filter((i) => i.severity === 'warning')
      if (issues.some((i) => i.severity === 'error')) throw invalid(issues)
      if (changes.every((c) => c.action === 'unchanged')) return { version: current.version, changes, warnings }
      if (dryRun) return { version: current.version, changes, warnings, dryRun: true }
      const version = await this.store.writePolicy(toStored(merged), { action: 'apply', summary: summarize(changes) }, current.version)
      return { version, changes, warnings }
    })
  }

  /** DELETE /v1/policy/:kind/:name: 404 when absent, 422 when the rest would be invalid. */
  delete(kind: string, name: string, namespace: string): Promise<{ version: number }> {
    return this.change(async () => {
      const current = await this.store.readPolicy()
      // Kinds are matched without case, so `service` finds Service.
      const idx = current.resources.findIndex((r) => r.kind.toLowerCase() === kind.toLowerCase() && r.name === name && r.namespace === namespace)
      if (idx < 0) throw notFound(`no ${kind}/${name} in namespace ${namespace}`)
      const gone = current.resources[idx]!
      const rest = current.resources.filter((_, i) => i !== idx)
      const issues = this.validate(rest.map((r) => ({ key: r, value: r.value })))
      if (issues.some((i) => i.severity === 'error')) throw invalid(issues, `deleting ${gone.kind}/${gone.name} would leave the policy invalid`)
      const version = await this.store.writePolicy(rest, { action: 'delete', summary: `deleted ${gone.kind}/${gone.name}${nsSuffix(gone.namespace)}` }, current.version)
      return { version }
    })
  }

  /** POST /v1/rollback: the policy of `version` becomes a new version (unchanged → no new one). */
  rollback(target: number): Promise<{ version: number; changes: Change[] }> {
    return this.change(async () => {
      const kept = await this.store.policyAt(target)
      if (!kept) throw notFound(`version ${target} is not in the policy history (GET /v1/history lists the versions kept)`)
      const current = await this.store.readPolicy()
      // Revocations in force stay as they are: rolling back a bad Route must not lift (or bring
      // back) an emergency revocation (RELIABILITY M8); weft unrevoke lifts one.
      const resources = [...kept.filter((r) => r.kind !== REVOCATION_KIND), ...current.resources.filter((r) => r.kind === REVOCATION_KIND)]
      const before = new Map(current.resources.map((r) => [keyString(r), r]))
      const changes: Change[] = []
      for (const r of resources) {
        const old = before.get(keyString(r))
        before.delete(keyString(r))
        changes.push({ kind: r.kind, namespace: r.namespace, name: r.name, action: !old ? 'created' : canonical(old.value) === canonical(r.value) ? 'unchanged' : 'updated' })
      }
      for (const r of before.values()) changes.push({ kind: r.kind, namespace: r.namespace, name: r.name, action: 'deleted' })
      // Same content, same order: nothing to store.
      if (changes.every((c) => c.action === 'unchanged') && current.resources.length === resources.length &&
        current.resources.every((r, i) => keyString(r) === keyString(resources[i]!))) {
        return { version: current.version, changes }
      }
      // The registry may have moved since: the old policy is checked like a new one.
      const issues = this.validate(resources.map((r) => ({ key: r, value: r.value })))
      if (issues.some((i) => i.severity === 'error')) throw invalid(issues, `the policy of version ${target} is not valid with the current registry`)
      const summary = `rollback to version ${target}: ${summarize(changes)}`
      const version = await this.store.writePolicy(resources, { action: 'rollback', summary }, current.version)
      return { version, changes }
    })
  }

  /** Validates a whole policy as instances will see it: composed with the registry. */
  private validate(entries: readonly Entry[]): ConfigIssue[] {
    const composed = composeView(entries.map((e) => e.value), this.endpoints())
    // composeView keeps its input's order (one output per input, then the registry's default
    // Services), so output i < entries.length is entries[i]: its positions still apply.
    const resources: RawResource[] = composed.resources.map((value, i) => ({ value, index: i, locate: entries[i]?.raw?.locate ?? noLocation }))
    return validatePolicy({ resources, issues: [] }).issues
  }

  /** One change at a time; a CAS conflict (another daemon wrote) is retried once, then 409. */
  private change<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      try {
        return await fn()
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err
      }
      try {
        return await fn()
      } catch (err) {
        if (err instanceof ConflictError) throw new HttpError(409, 'WEFT_ERR_CONFLICT', `${err.message}; retry`)
        throw err
      }
    })
  }
}

function invalid(issues: ConfigIssue[], why?: string): HttpError {
  const errors = issues.filter((i) => i.severity === 'error')
  const first = errors[0] ? `: ${formatIssue(errors[0])}` : ''
  const head = why ?? `policy refused (${errors.length} error${errors.length === 1 ? '' : 's'}); nothing was stored`
  return new HttpError(422, 'WEFT_ERR_POLICY_INVALID', `${head}${first}`, { issues })
}

function keyOf(value: unknown): ResourceKey | undefined {
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null
  if (typeof v !== 'object' || v === null || typeof v.kind !== 'string') return undefined
  const meta = typeof v.metadata === 'object' && v.metadata !== null ? v.metadata : undefined
  if (typeof meta?.name !== 'string') return undefined
  return { kind: v.kind, namespace: typeof meta.namespace === 'string' ? meta.namespace : 'default', name: meta.name }
}

function keyString(k: ResourceKey): string {
  return `${k.kind}/${k.namespace}/${k.name}`
}

function toStored(entries: readonly Entry[]): StoredResource[] {
  // Only called after validation passed: every entry has a key.
  return entries.map((e) => ({ ...e.key!, value: e.value }))
}

function nsSuffix(ns: string): string {
  return ns === 'default' ? '' : ` -n ${ns}`
}

/** "created Route/payments-canary; updated Service/payments" */
function summarize(changes: readonly Change[]): string {
  const parts = changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.kind}/${c.name}${nsSuffix(c.namespace)}`)
  return parts.length > 0 ? parts.join('; ') : 'no change'
}

function jsonClone(v: unknown): unknown {
  const text = JSON.stringify(v)
  if (text === undefined) throw new Error('not a JSON value')
  return JSON.parse(text)
}

/** JSON with object keys sorted, so two resources compare equal whatever their field order. */
export function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => {
    if (typeof val !== 'object' || val === null || Array.isArray(val)) return val
    // No prototype: a "__proto__" key stays a key instead of setting one.
    const sorted = Object.create(null) as Record<string, unknown>
    for (const k of Object.keys(val).sort()) sorted[k] = (val as Record<string, unknown>)[k]
    return sorted
  })
}
