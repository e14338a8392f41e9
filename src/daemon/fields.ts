// The one rule for a request body's fields, shared by the request parsers (requests.ts,
// traffic-parse.ts): a field not in the allowed list is a 400, unless the caller speaks a newer
// control protocol (version-skew.ts), whose fields are taken without it and named back.
import { printable } from '../util/printable.js'
import { badRequest } from './http-error.js'

/** Ignored fields named back at most (a newer instance adds a few). */
const MAX_IGNORED = 16

/**
 * Refuses a field not in `allowed`; with `ignored` (a newer instance's call) notes it there instead,
 * as "what.field", and the parser does not read it.
 */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[], what: string, ignored?: string[]): void {
  for (const k of Object.keys(body)) {
    if (allowed.includes(k)) continue
    if (ignored && ignored.length < MAX_IGNORED) ignored.push(`${what}.${printable(k).slice(0, 64)}`)
    else if (!ignored) throw badRequest(`${what}: unknown field "${k}" (allowed: ${allowed.join(', ')})`)
  }
}
