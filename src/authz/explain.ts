// Why a rule did not match, in words (for `weft explain`). Off the hot path; it reads the same
// compiled matchers as match.ts, and the tests check that both always agree.
import type { AuthzExplanation, AuthzRequest } from './types.js'
import { Attr, type CompiledCondition, type CompiledOperation, type CompiledRule, type CompiledSource } from './compile.js'
import { attributeMatches, claimAt, headerText, operationMatches, sourceMatches } from './match.js'
import type { PatternSet } from './pattern.js'

const q = (v: unknown): string => JSON.stringify(v)

function listed(set: PatternSet | readonly (string | number)[]): string {
  const values = Array.isArray(set) ? set : (set as PatternSet).patterns
  return `[${values.map((v) => q(v)).join(', ')}]`
}

function fieldWhy(field: string, value: string | undefined, absent: string, set: PatternSet | null, negative: boolean): string | undefined {
  if (set === null) return undefined
  if (value === undefined) return negative ? undefined : `${field}: ${absent}`
  const hit = set.test(value)
  if (negative && hit) return `${field}: ${q(value)} is excluded by ${listed(set)}`
  if (!negative && !hit) return `${field}: ${q(value)} matches none of ${listed(set)}`
  return undefined
}

function sourceWhy(s: CompiledSource, req: AuthzRequest, at: string): string | undefined {
  const noPeer = 'no peer identity (the connection is not mTLS)'
  const noJwt = 'no verified JWT'
  return fieldWhy(`${at}.principals`, req.principal, noPeer, s.principals, false)
    ?? fieldWhy(`${at}.notPrincipals`, req.principal, noPeer, s.notPrincipals, true)
    ?? fieldWhy(`${at}.namespaces`, req.namespace, noPeer, s.namespaces, false)
    ?? fieldWhy(`${at}.notNamespaces`, req.namespace, noPeer, s.notNamespaces, true)
    ?? fieldWhy(`${at}.requestPrincipals`, req.requestPrincipal, noJwt, s.requestPrincipals, false)
    ?? fieldWhy(`${at}.notRequestPrincipals`, req.requestPrincipal, noJwt, s.notRequestPrincipals, true)
}

function exactWhy<T extends string | number>(field: string, value: T, list: readonly T[] | null, negative: boolean): string | undefined {
  if (list === null) return undefined
  const hit = list.includes(value)
  if (negative && hit) return `${field}: ${q(value)} is excluded by ${listed(list)}`
  if (!negative && !hit) return `${field}: ${q(value)} is none of ${listed(list)}`
  return undefined
}

function operationWhy(o: CompiledOperation, req: AuthzRequest, path: string | undefined, method: string | undefined, at: string): string | undefined {
  if ((o.methods !== null || o.notMethods !== null) && method === undefined) return `${at}: the method ${q(req.method)} is not an uppercase token`
  if ((o.paths !== null || o.notPaths !== null) && path === undefined) return `${at}: the path ${q(req.path)} was refused (cannot be normalised safely)`
  return exactWhy(`${at}.methods`, method!, o.methods, false)
    ?? exactWhy(`${at}.notMethods`, method!, o.notMethods, true)
    ?? fieldWhy(`${at}.paths`, path, '', o.paths, false)
    ?? fieldWhy(`${at}.notPaths`, path, '', o.notPaths, true)
    ?? exactWhy(`${at}.ports`, req.port, o.ports, false)
    ?? exactWhy(`${at}.notPorts`, req.port, o.notPorts, true)
}

/** The attribute's value as shown in a reason. */
function shown(c: CompiledCondition, req: AuthzRequest): string {
  switch (c.attr) {
    case Attr.HEADER: return headerText(req, c.header) === undefined ? 'absent' : q(headerText(req, c.header))
    case Attr.SOURCE_PRINCIPAL: return req.principal === undefined ? 'absent (no mTLS)' : q(req.principal)
    case Attr.SOURCE_NAMESPACE: return req.namespace === undefined ? 'absent (no mTLS)' : q(req.namespace)
    case Attr.AUTH_PRINCIPAL: return req.requestPrincipal === undefined ? 'absent (no verified JWT)' : q(req.requestPrincipal)
    case Attr.AUTH_AUDIENCES: return req.auth === undefined ? 'absent (no verified JWT)' : q(req.auth.audiences)
    case Attr.AUTH_PRESENTER: return req.auth?.presenter === undefined ? 'absent' : q(req.auth.presenter)
    case Attr.CLAIM: return claimAt(req, c.claim) === undefined ? 'absent' : q(claimAt(req, c.claim))
    default: return String(req.port)
  }
}

function conditionWhy(c: CompiledCondition, req: AuthzRequest, at: string): string | undefined {
  if (c.attr === Attr.DESTINATION_PORT) {
    return exactWhy(`${at} ${c.key}`, req.port, c.valuePorts, false) ?? exactWhy(`${at} ${c.key}`, req.port, c.notValuePorts, true)
  }
  if (c.values !== null && !attributeMatches(c, c.values, req)) return `${at} ${c.key}: ${shown(c, req)} matches none of ${listed(c.values)}`
  if (c.notValues !== null && attributeMatches(c, c.notValues, req)) return `${at} ${c.key}: ${shown(c, req)} is excluded by ${listed(c.notValues)}`
  return undefined
}

function entriesWhy<T>(entries: readonly T[], name: string, matches: (e: T) => boolean, why: (e: T, at: string) => string | undefined): string | undefined {
  if (entries.length === 0 || entries.some(matches)) return undefined
  const reasons = entries.map((e, i) => why(e, `${name}[${i}]`) ?? `${name}[${i}]: does not match`)
  return reasons.length === 1 ? reasons[0] : `no ${name} entry matches (${reasons.join('; ')})`
}

/** Undefined when the rule matches; otherwise the first part that did not. */
export function ruleWhyNot(rule: CompiledRule, req: AuthzRequest, path: string | undefined, method: string | undefined): string | undefined {
  return entriesWhy(rule.from, 'from', (s) => sourceMatches(s, req), (s, at) => sourceWhy(s, req, at))
    ?? entriesWhy(rule.to, 'to', (o) => operationMatches(o, req, path, method), (o, at) => operationWhy(o, req, path, method, at))
    ?? rule.when.map((c, i) => conditionWhy(c, req, `when[${i}]`)).find((w) => w !== undefined)
}

/**
 * An explanation as lines, in `weft explain`'s words: what the engine saw, then each policy that
 * selects the service with each rule's outcome (`✓`/`✗` per policy, "rule N: matches" or "rule N:
 * no match (why)"). For the createMesh `debug.authz` switch, which adds it to a denial; it shows
 * policy contents, so it is never on by default.
 */
export function explanationLines(x: AuthzExplanation, req: AuthzRequest): string[] {
  const lines = [
    `request: ${req.method} ${x.path === undefined ? `${q(req.path)} (refused: cannot be normalised safely)` : q(x.path)}, port ${req.port}, ` +
      `peer ${req.principal === undefined ? 'none (no mTLS)' : q(req.principal)}, request principal ${req.requestPrincipal === undefined ? 'none (no verified JWT)' : q(req.requestPrincipal)}`,
  ]
  for (const p of x.policies) {
    if (!p.applies) continue
    lines.push(`${p.rules.some((r) => r.matched) ? '✓' : '✗'} ${p.action} ${p.name}`)
    for (const r of p.rules) lines.push(`  rule ${r.index}: ${r.matched ? 'matches' : `no match${r.why ? ` (${r.why})` : ''}`}`)
  }
  if (!x.policies.some((p) => p.applies)) lines.push('no AuthorizationPolicy selects this service')
  return lines
}
