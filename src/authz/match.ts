// Rule matching on the hot path: a rule matches when every part it has matches (from: any entry;
// to: any entry; when: every condition); inside an entry every field present must match.
import type { AuthzRequest } from './types.js'
import { Attr, type CompiledCondition, type CompiledOperation, type CompiledPolicy, type CompiledRule, type CompiledSource } from './compile.js'
import type { PatternSet } from './pattern.js'
import { normalizeHost } from './normalize-host.js'

// An absent attribute (no peer, no JWT, no header) never matches a positive field and always
// matches a negative one: `principals: ["*"]` requires an identity, `notPrincipals` does not.
function positive(set: PatternSet, value: string | undefined): boolean {
  return value !== undefined && set.test(value)
}

export function sourceMatches(s: CompiledSource, req: AuthzRequest): boolean {
  if (s.principals !== null && !positive(s.principals, req.principal)) return false
  if (s.notPrincipals !== null && positive(s.notPrincipals, req.principal)) return false
  if (s.namespaces !== null && !positive(s.namespaces, req.namespace)) return false
  if (s.notNamespaces !== null && positive(s.notNamespaces, req.namespace)) return false
  if (s.requestPrincipals !== null && !positive(s.requestPrincipals, req.requestPrincipal)) return false
  if (s.notRequestPrincipals !== null && positive(s.notRequestPrincipals, req.requestPrincipal)) return false
  return true
}

/**
 * `path` is the normalised path and `method` the method, each undefined when refused: then an
 * entry that looks at it does not match at all (neither its positive nor its negative field).
 */
export function operationMatches(o: CompiledOperation, req: AuthzRequest, path: string | undefined, method: string | undefined): boolean {
  if (o.methods !== null || o.notMethods !== null) {
    if (method === undefined) return false
    if (o.methods !== null && !o.methods.includes(method)) return false
    if (o.notMethods !== null && o.notMethods.includes(method)) return false
  }
  if (o.paths !== null || o.notPaths !== null) {
    if (path === undefined) return false
    if (o.paths !== null && !o.paths.test(path)) return false
    if (o.notPaths !== null && o.notPaths.test(path)) return false
  }
  if (o.ports !== null && !o.ports.includes(req.port)) return false
  if (o.notPorts !== null && o.notPorts.includes(req.port)) return false
  return true
}

export function conditionMatches(c: CompiledCondition, req: AuthzRequest): boolean {
  if (c.attr === Attr.DESTINATION_PORT) {
    if (c.valuePorts !== null && !c.valuePorts.includes(req.port)) return false
    return c.notValuePorts === null || !c.notValuePorts.includes(req.port)
  }
  if (c.values !== null && !attributeMatches(c, c.values, req)) return false
  return c.notValues === null || !attributeMatches(c, c.notValues, req)
}

/** Whether the condition's attribute is present and one of its values matches one of set's patterns. */
export function attributeMatches(c: CompiledCondition, set: PatternSet, req: AuthzRequest): boolean {
  switch (c.attr) {
    case Attr.HEADER: {
      const v = headerText(req, c.header)
      return v !== undefined && set.test(c.isHost ? normalizeHost(v) : v)
    }
    case Attr.SOURCE_PRINCIPAL: return positive(set, req.principal)
    case Attr.SOURCE_NAMESPACE: return positive(set, req.namespace)
    case Attr.AUTH_PRINCIPAL: return positive(set, req.requestPrincipal)
    case Attr.AUTH_PRESENTER: return positive(set, req.auth?.presenter)
    case Attr.AUTH_AUDIENCES: {
      const auds = req.auth?.audiences
      if (auds === undefined) return false
      for (const a of auds) if (set.test(a)) return true
      return false
    }
    case Attr.CLAIM: return claimMatches(claimAt(req, c.claim), set, c.spaceDelimited)
    default: return false
  }
}

/**
 * A header's value; repeated headers given as an array are read joined with ", " (what node:http
 * does for most headers, and Istio's rule), so `acme` never matches `acme, evil`.
 */
export function headerText(req: AuthzRequest, name: string): string | undefined {
  const v = req.headers[name]
  if (typeof v === 'string') return v
  // Not an array: absent, or a prototype member ("constructor", "__proto__") of a plain object.
  if (!Array.isArray(v) || v.length === 0) return undefined
  return v.length === 1 ? v[0] : v.join(', ')
}

/** The claim at a path of names (own properties only: "__proto__" or "toString" find nothing). */
export function claimAt(req: AuthzRequest, path: readonly string[]): unknown {
  let v: unknown = req.auth?.claims
  for (const name of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.hasOwn(v, name)) return undefined
    v = (v as Record<string, unknown>)[name]
  }
  return v
}

/** String claims match as a whole (scope/permission: any space-separated item); lists: any string item. */
function claimMatches(v: unknown, set: PatternSet, spaceDelimited: boolean): boolean {
  if (typeof v === 'string') return spaceDelimited ? anyToken(v, set) : set.test(v)
  if (!Array.isArray(v)) return false
  for (const item of v) if (typeof item === 'string' && set.test(item)) return true
  return false
}

function anyToken(s: string, set: PatternSet): boolean {
  let i = 0
  while (i < s.length) {
    while (i < s.length && s.charCodeAt(i) === 0x20) i++
    let j = i
    while (j < s.length && s.charCodeAt(j) !== 0x20) j++
    if (j > i && set.test(s, i, j)) return true
    i = j
  }
  return false
}

export function ruleMatches(rule: CompiledRule, req: AuthzRequest, path: string | undefined, method: string | undefined): boolean {
  if (rule.from.length > 0) {
    let any = false
    for (const s of rule.from) if (sourceMatches(s, req)) { any = true; break }
    if (!any) return false
  }
  if (rule.to.length > 0) {
    let any = false
    for (const o of rule.to) if (operationMatches(o, req, path, method)) { any = true; break }
    if (!any) return false
  }
  for (const c of rule.when) if (!conditionMatches(c, req)) return false
  return true
}

/** Index of the first matching rule, or -1 (a policy with no rules matches nothing). */
export function firstMatchingRule(p: CompiledPolicy, req: AuthzRequest, path: string | undefined, method: string | undefined): number {
  for (let i = 0; i < p.rules.length; i++) if (ruleMatches(p.rules[i]!, req, path, method)) return i
  return -1
}

/** Whether a method is an uppercase token (what policies' methods are written as). */
export function isMethodToken(m: string): boolean {
  if (m.length === 0) return false
  for (let i = 0; i < m.length; i++) {
    const c = m.charCodeAt(i)
    const ok = (c >= 0x41 && c <= 0x5a) || (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d))
    if (!ok) return false
  }
  return true
}
