// Checker: small typed readers over an untrusted object that record precise issues (field path,
// line:column) instead of throwing, so one pass reports every problem in a resource.
import { parseDuration } from '../util/duration.js'
import type { RawResource } from './load.js'
import type { ConfigIssue, PathSeg } from './types.js'

export type Obj = Record<string, unknown>

export class Checker {
  constructor(
    readonly raw: RawResource,
    readonly resource: string,
    readonly issues: ConfigIssue[],
  ) {}

  error(path: readonly PathSeg[], message: string, code = 'WEFT_E_FIELD_INVALID'): void {
    this.push('error', code, path, message)
  }

  warn(path: readonly PathSeg[], message: string, code: string): void {
    this.push('warning', code, path, message)
  }

  private push(severity: 'error' | 'warning', code: string, path: readonly PathSeg[], message: string): void {
    const pos = this.raw.locate(path)
    const shown = this.raw.translated ? this.raw.translated.sourcePath(path) : path
    this.issues.push({ severity, code, resource: this.resource, path: formatPath(shown), message, file: this.raw.file, line: pos?.line, column: pos?.column })
  }

  /** An object at path (or undefined when absent); reports fields outside `allowed`. */
  object(value: unknown, path: readonly PathSeg[], allowed: readonly string[]): Obj | undefined {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'object' || Array.isArray(value)) {
      this.error(path, `must be an object`)
      return undefined
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.error([...path, key], `unknown field "${key}" (allowed: ${allowed.join(', ')})`, 'WEFT_E_FIELD_UNKNOWN')
    }
    return value as Obj
  }

  array(value: unknown, path: readonly PathSeg[]): unknown[] | undefined {
    if (value === undefined || value === null) return undefined
    if (!Array.isArray(value)) {
      this.error(path, 'must be a list')
      return undefined
    }
    return value
  }

  string(value: unknown, path: readonly PathSeg[], opts: { required?: boolean; oneOf?: readonly string[]; pattern?: RegExp } = {}): string | undefined {
    if (value === undefined || value === null) {
      if (opts.required) this.error(path, 'is required', 'WEFT_E_FIELD_REQUIRED')
      return undefined
    }
    if (typeof value !== 'string' || value.length === 0) {
      this.error(path, 'must be a non-empty string')
      return undefined
    }
    if (opts.oneOf && !opts.oneOf.includes(value)) {
      this.error(path, `must be one of ${opts.oneOf.join(' | ')} (got "${value}")`)
      return undefined
    }
    if (opts.pattern && !opts.pattern.test(value)) {
      this.error(path, `"${value}" does not match ${opts.pattern}`)
      return undefined
    }
    return value
  }

  number(value: unknown, path: readonly PathSeg[], opts: { min?: number; max?: number; integer?: boolean } = {}): number | undefined {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      this.error(path, `must be a number (got ${JSON.stringify(value)})`)
      return undefined
    }
    if (opts.integer && !Number.isInteger(value)) return void this.error(path, `must be a whole number (got ${value})`)
    if (opts.min !== undefined && value < opts.min) return void this.error(path, `must be ≥ ${opts.min} (got ${value})`)
    if (opts.max !== undefined && value > opts.max) return void this.error(path, `must be ≤ ${opts.max} (got ${value})`)
    return value
  }

  boolean(value: unknown, path: readonly PathSeg[]): boolean | undefined {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'boolean') return void this.error(path, 'must be true or false')
    return value
  }

  duration(value: unknown, path: readonly PathSeg[], opts: { min?: number } = {}): number | undefined {
    if (value === undefined || value === null) return undefined
    const ms = parseDuration(value)
    if (ms === undefined) return void this.error(path, `must be a duration like "250ms", "2s" or "1m" (got ${JSON.stringify(value)})`)
    if (opts.min !== undefined && ms < opts.min) return void this.error(path, `must be at least ${opts.min}ms (got ${ms}ms)`)
    return ms
  }

  /** A map of string → string (labels, subsets). */
  labels(value: unknown, path: readonly PathSeg[]): Record<string, string> | undefined {
    if (value === undefined || value === null) return undefined
    if (typeof value !== 'object' || Array.isArray(value)) return void this.error(path, 'must be a map of label names to values')
    const out: Record<string, string> = {}
    for (const [k, v] of Object.entries(value as Obj)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v)
      else this.error([...path, k], 'label values must be strings')
    }
    return out
  }
}

export function formatPath(path: readonly PathSeg[]): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg
  return out
}
