// Finds Route rules that can never match because an earlier rule (in the same or an earlier
// Route for the same service) matches everything they match. Reported as warnings, not merged.
import type { MatchSpec, RouteSettings, StringMatch } from './types.js'

export interface Shadowing {
  route: RouteSettings
  ruleIndex: number
  byRoute: RouteSettings
  byRuleIndex: number
}

function stringCovers(a: StringMatch | undefined, b: StringMatch | undefined): boolean {
  if (a === undefined) return true
  if (b === undefined) return a.prefix === '/' // only a "/" prefix covers every path
  if (a.exact !== undefined) return b.exact === a.exact
  if (a.prefix !== undefined) return (b.exact ?? b.prefix)?.startsWith(a.prefix) ?? false
  return a.regex === b.regex
}

function mapCovers(a: Record<string, StringMatch> | undefined, b: Record<string, StringMatch> | undefined): boolean {
  for (const [k, am] of Object.entries(a ?? {})) if (!b?.[k] || !stringCovers(am, b[k])) return false
  return true
}

/** A match's path condition; a gRPC match is one on "/service/method" (method-only stays opaque). */
function pathOf(m: MatchSpec): StringMatch | undefined {
  const g = m.grpc
  if (!g) return m.path
  if (g.service !== undefined && g.method !== undefined) return { exact: `/${g.service}/${g.method}` }
  if (g.service !== undefined) return { prefix: `/${g.service}/` }
  return { regex: `grpc method ${g.method}` }
}

/** True when every request matched by `b` is also matched by `a`. */
export function matchCovers(a: MatchSpec, b: MatchSpec): boolean {
  if (!stringCovers(pathOf(a), pathOf(b))) return false
  if (a.methods && (!b.methods || !b.methods.every((m) => a.methods!.includes(m)))) return false
  return mapCovers(a.headers, b.headers) && mapCovers(a.query, b.query)
}

function ruleCovers(a: MatchSpec[], b: MatchSpec[]): boolean {
  if (a.length === 0) return true // a rule without matches matches everything
  const bs = b.length === 0 ? [{}] : b
  return bs.every((mb) => a.some((ma) => matchCovers(ma, mb)))
}

export function findShadowedRules(routes: RouteSettings[]): Shadowing[] {
  const out: Shadowing[] = []
  const byService = new Map<string, { route: RouteSettings; index: number }[]>()
  for (const route of routes) {
    const list = byService.get(route.service) ?? []
    route.rules.forEach((_, index) => list.push({ route, index }))
    byService.set(route.service, list)
  }
  for (const list of byService.values()) {
    for (let j = 1; j < list.length; j++) {
      const later = list[j]!
      for (let i = 0; i < j; i++) {
        const earlier = list[i]!
        if (ruleCovers(earlier.route.rules[earlier.index]!.matches, later.route.rules[later.index]!.matches)) {
          out.push({ route: later.route, ruleIndex: later.index, byRoute: earlier.route, byRuleIndex: earlier.index })
          break
        }
      }
    }
  }
  return out
}
