// Compiles Route rule matches into predicates once per config version. First matching rule wins;
// within a rule, matches are OR'ed and the fields of one match are AND'ed (Istio semantics).
import type { MatchSpec, StringMatch } from '../config/types.js'
import type { HeaderRecord } from '../util/headers.js'

export interface RequestView {
  method: string
  /** Path without the query string. */
  pathname: string
  /** Raw query string without "?" ('' when none). */
  search: string
  /** The query parsed on first use by a query match, then shared by every other one. */
  query?: URLSearchParams
  headers: HeaderRecord
}

export type RulePredicate = (req: RequestView) => boolean

function compileString(m: StringMatch): (v: string | undefined) => boolean {
  if (m.exact !== undefined) {
    const x = m.exact
    return (v) => v === x
  }
  if (m.prefix !== undefined) {
    const x = m.prefix
    return (v) => v !== undefined && v.startsWith(x)
  }
  const re = new RegExp(`^(?:${m.regex})$`)
  return (v) => v !== undefined && re.test(v)
}

function headerString(h: HeaderRecord, name: string): string | undefined {
  const v = h[name]
  return Array.isArray(v) ? v.join(',') : v
}

function queryValue(r: RequestView, name: string): string | undefined {
  if (r.search === '') return undefined
  return (r.query ??= new URLSearchParams(r.search)).get(name) ?? undefined
}

/** A gRPC match is a check on the call's path, "/<package.Service>/<Method>". */
function grpcPathCheck(g: { service?: string; method?: string }): RulePredicate {
  if (g.service !== undefined && g.method !== undefined) {
    const path = `/${g.service}/${g.method}`
    return (r) => r.pathname === path
  }
  if (g.service !== undefined) {
    const prefix = `/${g.service}/`
    return (r) => r.pathname.startsWith(prefix) && r.pathname.indexOf('/', prefix.length) < 0
  }
  const suffix = `/${g.method}`
  return (r) => r.pathname.endsWith(suffix) && r.pathname.lastIndexOf('/', r.pathname.length - suffix.length - 1) === 0
}

export function compileMatch(m: MatchSpec): RulePredicate {
  const checks: RulePredicate[] = []
  if (m.methods) {
    const set = new Set(m.methods)
    checks.push((r) => set.has(r.method))
  }
  if (m.path) {
    const f = compileString(m.path)
    checks.push((r) => f(r.pathname))
  }
  if (m.grpc) checks.push(grpcPathCheck(m.grpc))
  for (const [name, sm] of Object.entries(m.headers ?? {})) {
    const f = compileString(sm)
    checks.push((r) => f(headerString(r.headers, name)))
  }
  for (const [name, sm] of Object.entries(m.query ?? {})) {
    const f = compileString(sm)
    checks.push((r) => f(queryValue(r, name)))
  }
  if (checks.length === 0) return () => true
  if (checks.length === 1) return checks[0]!
  return (r) => {
    for (const c of checks) if (!c(r)) return false
    return true
  }
}

/** A rule's predicate: any of its matches; no matches means every request. */
export function compileRule(matches: readonly MatchSpec[]): RulePredicate {
  if (matches.length === 0) return () => true
  const preds = matches.map(compileMatch)
  if (preds.length === 1) return preds[0]!
  return (r) => {
    for (const p of preds) if (p(r)) return true
    return false
  }
}
