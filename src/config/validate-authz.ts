// AuthorizationPolicy validation (ARCHITECTURE §4, RELIABILITY §3.3), and the one definition of
// its grammar (pattern forms, value forms, `when` keys) that src/authz also compiles with.
import type { Checker, Obj } from './checker.js'
import { DNS_NAME } from './names.js'
import type { AuthorizationSettings, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource, PathSeg, ServiceSettings } from './types.js'

// ---------------------------------------------------------------------------------------------
// Grammar, shared with src/authz/compile.ts (authz depends on config, never the other way).

/** What a policy string is matched against; each has its own value form. */
export type AuthzValueKind = 'principal' | 'namespace' | 'requestPrincipal' | 'method' | 'path' | 'header' | 'host' | 'claim' | 'port'

/** An attribute a `when` condition reads. */
export type WhenAttribute =
  | { kind: 'header'; name: string }
  | { kind: 'source.principal' }
  | { kind: 'source.namespace' }
  | { kind: 'request.auth.principal' }
  | { kind: 'request.auth.audiences' }
  | { kind: 'request.auth.presenter' }
  | { kind: 'claim'; path: string[] }
  | { kind: 'destination.port' }

/** The `when` keys this version understands; anything else is an error (fail closed, S7). */
export const WHEN_KEYS = ['request.headers[<name>]', 'source.principal', 'source.namespace', 'request.auth.principal',
  'request.auth.audiences', 'request.auth.presenter', 'request.auth.claims[<name>]…', 'destination.port'] as const

const SIMPLE_KEYS: Record<string, WhenAttribute> = {
  'source.principal': { kind: 'source.principal' },
  'source.namespace': { kind: 'source.namespace' },
  'request.auth.principal': { kind: 'request.auth.principal' },
  'request.auth.audiences': { kind: 'request.auth.audiences' },
  'request.auth.presenter': { kind: 'request.auth.presenter' },
  'destination.port': { kind: 'destination.port' },
}

/** HTTP token characters (RFC 9110 §5.6.2): header names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const MAX_CLAIM_DEPTH = 8

/** Parses a `when` key; a string result is the error message. */
export function parseWhenKey(key: string): WhenAttribute | string {
  const simple = SIMPLE_KEYS[key]
  if (simple) return simple
  if (key.startsWith('request.headers[') && key.endsWith(']')) {
    const name = key.slice('request.headers['.length, -1)
    if (!TOKEN.test(name)) return `"${name}" is not a header name`
    return { kind: 'header', name: name.toLowerCase() }
  }
  if (key.startsWith('request.auth.claims[')) {
    const path: string[] = []
    let rest = key.slice('request.auth.claims'.length)
    while (rest.length > 0) {
      const close = rest.indexOf(']')
      if (rest[0] !== '[' || close < 2) return `claims are written request.auth.claims[name] or request.auth.claims[a][b] (got "${key}")`
      const name = rest.slice(1, close)
      if (name.includes('[')) return `claims are written request.auth.claims[name] or request.auth.claims[a][b] (got "${key}")`
      path.push(name)
      rest = rest.slice(close + 1)
    }
    if (path.length > MAX_CLAIM_DEPTH) return `claim paths are at most ${MAX_CLAIM_DEPTH} deep`
    return { kind: 'claim', path }
  }
  return `unknown key "${key}" (this version understands ${WHEN_KEYS.join(', ')})`
}

/** The value form a `when` attribute's values must have. */
export function whenValueKind(a: WhenAttribute): AuthzValueKind {
  switch (a.kind) {
    case 'header': return a.name === 'host' ? 'host' : 'header'
    case 'source.principal': return 'principal'
    case 'source.namespace': return 'namespace'
    case 'request.auth.principal': return 'requestPrincipal'
    case 'destination.port': return 'port'
    default: return 'claim'
  }
}

/**
 * Checks the pattern form: "exact", "prefix*", "*suffix" or "*". A `*` anywhere else is refused:
 * patterns are plain string comparisons, never regular expressions (CVE-2026-39350).
 */
export function patternError(text: string): string | undefined {
  if (text.length === 0) return 'must be a non-empty string'
  if (text === '*') return undefined
  const inner = text.slice(1, -1)
  const both = text.startsWith('*') && text.endsWith('*')
  if (inner.includes('*') || both) {
    return `"${text}": a * may only start or end a pattern (exact, "prefix*", "*suffix" or "*"); patterns are not regular expressions`
  }
  return undefined
}

/** Splits a valid pattern into its form and literal part. */
export function patternParts(text: string): { form: 'any' | 'exact' | 'prefix' | 'suffix'; literal: string } {
  if (text === '*') return { form: 'any', literal: '' }
  if (text.endsWith('*')) return { form: 'prefix', literal: text.slice(0, -1) }
  if (text.startsWith('*')) return { form: 'suffix', literal: text.slice(1) }
  return { form: 'exact', literal: text }
}

const SPIFFE_SCHEME = 'spiffe://'
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/
const SPIFFE_PATH_CHARS = /^[A-Za-z0-9._/-]*$/
const NAMESPACE_CHARS = /^[A-Za-z0-9._-]+$/
const METHOD = /^[A-Z][A-Z0-9_-]*$/
const CONTROL = /[\u0000-\u001f\u007f]/

/** Whether a "/"-separated piece has an empty, "." or ".." segment where it is complete. */
function badSegments(piece: string, startsPartial: boolean, endsPartial: boolean): string | undefined {
  const parts = piece.split('/')
  for (let i = 0; i < parts.length; i++) {
    const complete = (i > 0 || !startsPartial) && (i < parts.length - 1 || !endsPartial)
    const p = parts[i]!
    if (p === '' && i < parts.length - 1 && (i > 0 || !startsPartial)) return 'an empty segment ("//")'
    if (complete && (p === '.' || p === '..')) return `a "${p}" segment`
  }
  return undefined
}

function principalError(form: string, literal: string): string | undefined {
  const hint = 'a principal is a SPIFFE ID, "spiffe://<trust domain>/ns/<namespace>/sa/<service>", or a pattern of one'
  if (form === 'suffix') {
    if (!SPIFFE_PATH_CHARS.test(literal)) return `"*${literal}": ${hint}; a suffix may hold only the ID's path characters (A-Z a-z 0-9 . _ - /)`
    const bad = badSegments(literal, true, false)
    return bad ? `"*${literal}" has ${bad}, which no SPIFFE ID has` : undefined
  }
  const shown = form === 'prefix' ? `${literal}*` : literal
  if (!literal.startsWith(SPIFFE_SCHEME)) {
    const istioStyle = /^[a-z0-9._-]+\/ns\//.test(literal)
    return `"${shown}": ${hint}${istioStyle ? ` (write "${SPIFFE_SCHEME}${shown}")` : ''}`
  }
  const rest = literal.slice(SPIFFE_SCHEME.length)
  if (form === 'prefix' && rest === '') return undefined // "spiffe://*": any SPIFFE ID
  const slash = rest.indexOf('/')
  const td = slash < 0 ? rest : rest.slice(0, slash)
  if (!TRUST_DOMAIN_CHARS.test(td) || td.length > 255) return `"${shown}": the trust domain "${td}" may hold only a-z 0-9 . _ - (lowercase), at most 255`
  if (slash < 0) {
    return form === 'prefix'
      ? `"${shown}": a prefix must name the whole trust domain and end in its path ("${SPIFFE_SCHEME}${td}/…*"), or it would also match other trust domains`
      : `"${shown}" names a trust domain, not a workload (add /ns/<namespace>/sa/<service>)`
  }
  const path = rest.slice(slash)
  if (!SPIFFE_PATH_CHARS.test(path)) return `"${shown}": path segments may hold only A-Z a-z 0-9 . _ - (no percent-encoding)`
  if (form === 'exact' && (path === '/' || path.endsWith('/'))) return `"${shown}" ends in "/", which no SPIFFE ID does`
  const bad = badSegments(path.slice(1), false, form === 'prefix')
  if (bad) return `"${shown}" has ${bad}, which no SPIFFE ID has`
  if (literal.length > 2048) return 'a SPIFFE ID is at most 2048 bytes'
  return undefined
}

const UNRESERVED = /^[A-Za-z0-9._~-]$/

/**
 * Whether a path literal is in the form src/authz/normalize-path.ts produces (requests are matched
 * after normalisation, so any other form could never match — in a DENY, a silent hole).
 */
function pathLiteralError(form: string, literal: string): string | undefined {
  const shown = form === 'prefix' ? `${literal}*` : form === 'suffix' ? `*${literal}` : literal
  if (form !== 'suffix' && !literal.startsWith('/')) return `"${shown}": a path must start with "/" (or be "*" or "*suffix")`
  if (CONTROL.test(literal) || literal.includes(' ')) return `"${shown}" holds a space or control character (write it percent-encoded, e.g. %20)`
  for (const ch of ['?', '#', '\\']) {
    if (literal.includes(ch)) {
      return ch === '\\'
        ? `"${shown}": requests are matched with "\\" read as "/"; write "/"`
        : `"${shown}": requests are matched without their query and fragment; a path holds no "${ch}"`
    }
  }
  for (let i = literal.indexOf('%'); i >= 0; i = literal.indexOf('%', i + 1)) {
    const hex = literal.slice(i + 1, i + 3)
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return `"${shown}": "%" must start a percent-encoded byte like %20`
    const byte = parseInt(hex, 16)
    const ch = String.fromCharCode(byte)
    if (byte === 0) return `"${shown}": %00 is never matched (such requests are refused)`
    if (byte === 0x2f || byte === 0x5c) return `"${shown}": requests are matched with %${hex} decoded to "/"; write "/"`
    if (UNRESERVED.test(ch)) return `"${shown}": requests are matched with %${hex} decoded; write "${ch}"`
    if (hex !== hex.toUpperCase()) return `"${shown}": requests are matched with escapes in uppercase; write %${hex.toUpperCase()}`
  }
  const bad = badSegments(form === 'suffix' ? literal : literal.slice(1), form === 'suffix', form === 'prefix')
  if (bad) return `"${shown}" has ${bad}; requests are matched after slashes are merged and dot segments resolved, so it could never match`
  return undefined
}

function hostLiteralError(form: string, literal: string): string | undefined {
  if (literal !== literal.toLowerCase()) return `host values are matched lowercased; write "${literal.toLowerCase()}"`
  const bracket = literal.lastIndexOf(']')
  if (literal.indexOf(':', bracket + 1) >= 0) return 'host values are matched without the port; remove ":<port>"'
  if (form !== 'prefix' && literal.endsWith('.')) return 'host values are matched without a trailing "."; remove it'
  return undefined
}

/** Checks a policy value's form for what it is matched against; undefined when it is fine. */
export function valueError(kind: AuthzValueKind, text: string): string | undefined {
  const starErr = kind === 'method' || kind === 'port' ? undefined : patternError(text)
  if (starErr) return starErr
  const { form, literal } = kind === 'method' || kind === 'port' ? { form: 'exact', literal: text } : patternParts(text)
  if (form === 'any') return undefined
  switch (kind) {
    case 'principal': return principalError(form, literal)
    case 'namespace':
      return NAMESPACE_CHARS.test(literal) ? undefined : `"${text}": a namespace (pattern) may hold only A-Z a-z 0-9 . _ -`
    case 'requestPrincipal':
      if (CONTROL.test(literal)) return `"${text}" holds a control character`
      return form === 'exact' && !literal.includes('/') ? `"${text}": a request principal is "<issuer>/<subject>" of a verified JWT` : undefined
    case 'method':
      if (METHOD.test(text)) return undefined
      return text.toUpperCase() !== text && METHOD.test(text.toUpperCase())
        ? `"${text}": methods are matched case-sensitively as sent; write "${text.toUpperCase()}"`
        : `"${text}" is not an HTTP method (an uppercase token such as GET; patterns are not supported here)`
    case 'path': return pathLiteralError(form, literal)
    case 'host': return CONTROL.test(literal) ? `"${text}" holds a control character` : hostLiteralError(form, literal)
    case 'header':
    case 'claim':
      return CONTROL.test(literal) ? `"${text}" holds a control character` : undefined
    case 'port': return portOf(text) === undefined ? `"${text}" is not a port (a whole number 1–65535)` : undefined
  }
}

/** A port from a number or a numeric string; undefined when it is not 1–65535. */
export function portOf(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined
}

// ---------------------------------------------------------------------------------------------
// Validation of the resource.

const ACTIONS = ['ALLOW', 'DENY', 'AUDIT'] as const
const SOURCE_FIELDS: Record<keyof AuthzSource, AuthzValueKind> = {
  principals: 'principal', notPrincipals: 'principal',
  namespaces: 'namespace', notNamespaces: 'namespace',
  requestPrincipals: 'requestPrincipal', notRequestPrincipals: 'requestPrincipal',
}
const OPERATION_FIELDS = ['methods', 'notMethods', 'paths', 'notPaths', 'ports', 'notPorts'] as const

/**
 * Validates an AuthorizationPolicy spec into AuthorizationSettings, recording every problem with
 * its field path (and line:column for files). Returns undefined when the resource has any error:
 * a policy is never half-understood (fail closed, RELIABILITY S7).
 *
 * Shape (ARCHITECTURE §4): `{ service?, action?: ALLOW (default) | DENY | AUDIT, ignorePathCase?:
 * false (default), rules?: [{ from?: [{ principals, … }], to?: [{ methods, paths, ports, … }], when?:
 * [{ key, values?, notValues? }] }] }`. Istio's wrapped `from: [{ source: {…} }]` and
 * `to: [{ operation: {…} }]` are accepted too.
 */
export function validateAuthorizationPolicy(c: Checker, name: string, namespace: string, specIn: unknown, order: number,
  services: Map<string, ServiceSettings>): AuthorizationSettings | undefined {
  const firstIssue = c.issues.length
  const p: PathSeg[] = ['spec']
  if (specIn === undefined || specIn === null) {
    return void c.error(p, 'is required (spec: {} is the allow-nothing policy for the namespace)', 'WEFT_E_FIELD_REQUIRED')
  }
  const spec = c.object(specIn, p, ['service', 'action', 'rules', 'ignorePathCase'])
  if (!spec) return undefined
  const service = c.string(spec.service, [...p, 'service'], { pattern: DNS_NAME })
  if (service !== undefined && !services.has(service)) {
    // Registry-only services have no Service resource; a policy may still select one.
    c.warn([...p, 'service'], `no Service "${service}" in this config (fine if it registers with the daemon)`, 'WEFT_W_SERVICE_UNKNOWN')
  }
  if (spec.action === 'CUSTOM') c.error([...p, 'action'], 'CUSTOM (external authorization) is not supported; use ALLOW, DENY or AUDIT')
  const action = spec.action === 'CUSTOM' ? undefined : (c.string(spec.action, [...p, 'action'], { oneOf: ACTIONS }) ?? 'ALLOW') as AuthorizationSettings['action']
  const ignorePathCase = c.boolean(spec.ignorePathCase, [...p, 'ignorePathCase']) ?? false
  const rules: AuthzRule[] = []
  const rulesIn = c.array(spec.rules, [...p, 'rules']) ?? []
  if (rulesIn.length === 0 && (action === 'DENY' || action === 'AUDIT')) {
    c.warn([...p, 'rules'], `a ${action} policy with no rules matches nothing, so it has no effect`, 'WEFT_W_AUTHZ_NO_RULES')
  }
  rulesIn.forEach((ruleIn, i) => {
    const rule = readRule(c, ruleIn, [...p, 'rules', i], action === 'ALLOW')
    if (rule) rules.push(rule)
  })
  if (c.issues.slice(firstIssue).some((issue) => issue.severity === 'error') || action === undefined) return undefined
  return { name, namespace, ...(service !== undefined ? { service } : {}), action, rules, order, ...(ignorePathCase ? { ignorePathCase } : {}) }
}

function readRule(c: Checker, value: unknown, p: PathSeg[], isAllow: boolean): AuthzRule | undefined {
  const r = c.object(value, p, ['from', 'to', 'when'])
  if (!r) return value === undefined || value === null ? void c.error(p, 'must be an object ({} matches every request)') : undefined
  const from = readEntries(c, r.from, [...p, 'from'], 'source', (obj, ep) => readSource(c, obj, ep, isAllow))
  const to = readEntries(c, r.to, [...p, 'to'], 'operation', (obj, ep) => readOperation(c, obj, ep, isAllow))
  const when = (c.array(r.when, [...p, 'when']) ?? []).map((w, j) => readCondition(c, w, [...p, 'when', j], isAllow))
  return { from, to, when: when.filter((w): w is AuthzCondition => w !== undefined) }
}

/** A list of from/to entries, each flat (`{ principals }`) or in Istio's wrapper (`{ source: {…} }`). */
function readEntries<T>(c: Checker, value: unknown, p: PathSeg[], wrapper: string,
  read: (obj: unknown, p: PathSeg[]) => T | undefined): T[] {
  const out: T[] = []
  ;(c.array(value, p) ?? []).forEach((entry, i) => {
    let ep: PathSeg[] = [...p, i]
    let inner = entry
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry) && wrapper in entry) {
      if (Object.keys(entry).length !== 1) return c.error(ep, `write either { ${wrapper}: { … } } (Istio's form) or the fields directly, not both`)
      inner = (entry as Obj)[wrapper]
      ep = [...ep, wrapper]
    }
    const got = read(inner, ep)
    if (got !== undefined) out.push(got)
  })
  return out
}

function readSource(c: Checker, value: unknown, p: PathSeg[], isAllow: boolean): AuthzSource | undefined {
  const s = c.object(value, p, Object.keys(SOURCE_FIELDS))
  if (!s) return value === undefined || value === null ? void c.error(p, 'must be an object') : undefined
  const out: AuthzSource = {}
  for (const [field, kind] of Object.entries(SOURCE_FIELDS) as [keyof AuthzSource, AuthzValueKind][]) {
    const list = readValues(c, s[field], [...p, field], kind, field, isAllow)
    if (list) out[field] = list
  }
  if (Object.keys(s).length === 0) c.error(p, 'an empty source would match every caller; remove it (no from means any caller) or name principals, namespaces or requestPrincipals')
  return out
}

function readOperation(c: Checker, value: unknown, p: PathSeg[], isAllow: boolean): AuthzOperation | undefined {
  const o = c.object(value, p, OPERATION_FIELDS)
  if (!o) return value === undefined || value === null ? void c.error(p, 'must be an object') : undefined
  const out: AuthzOperation = {}
  for (const field of ['methods', 'notMethods', 'paths', 'notPaths'] as const) {
    const list = readValues(c, o[field], [...p, field], field.toLowerCase().endsWith('methods') ? 'method' : 'path', field, isAllow)
    if (list) out[field] = list
  }
  for (const field of ['ports', 'notPorts'] as const) {
    const list = readValues(c, o[field], [...p, field], 'port', field, isAllow)
    if (list) out[field] = list.map(Number)
  }
  if (Object.keys(o).length === 0) c.error(p, 'an empty operation would match every request; remove it (no to means any request) or name methods, paths or ports')
  return out
}

function readCondition(c: Checker, value: unknown, p: PathSeg[], isAllow: boolean): AuthzCondition | undefined {
  const w = c.object(value, p, ['key', 'values', 'notValues'])
  if (!w) return value === undefined || value === null ? void c.error(p, 'must be an object') : undefined
  const key = c.string(w.key, [...p, 'key'], { required: true })
  if (key === undefined) return undefined
  const attr = parseWhenKey(key)
  if (typeof attr === 'string') return void c.error([...p, 'key'], attr, 'WEFT_E_AUTHZ_KEY_UNKNOWN')
  const kind = whenValueKind(attr)
  const values = readValues(c, w.values, [...p, 'values'], kind, 'values', isAllow)
  const notValues = readValues(c, w.notValues, [...p, 'notValues'], kind, 'notValues', isAllow)
  if (w.values === undefined && w.notValues === undefined) return void c.error(p, 'needs values, notValues or both', 'WEFT_E_FIELD_REQUIRED')
  // Header names are case-insensitive: the stored key is the canonical (lowercase) one.
  const canonical = attr.kind === 'header' ? `request.headers[${attr.name}]` : key
  return { key: canonical, ...(values ? { values } : {}), ...(notValues ? { notValues } : {}) }
}

/** A non-empty list of values of one form; lints negative fields of an ALLOW policy. */
function readValues(c: Checker, value: unknown, p: PathSeg[], kind: AuthzValueKind, field: string, isAllow: boolean): string[] | undefined {
  const list = c.array(value, p)
  if (!list) return undefined
  if (list.length === 0) return void c.error(p, 'is an empty list: remove the field (absent means any) or list values')
  const out: string[] = []
  list.forEach((v, i) => {
    // Ports and header/claim values may be written unquoted (8080, true); everything else is a string.
    const scalar = (kind === 'port' && typeof v === 'number') || ((kind === 'header' || kind === 'claim') && (typeof v === 'number' || typeof v === 'boolean'))
    const text = scalar ? String(v) : c.string(v, [...p, i])
    if (text === undefined) return
    const err = valueError(kind, text)
    if (err) return c.error([...p, i], err, err.includes('a * may only') ? 'WEFT_E_AUTHZ_PATTERN_INVALID' : 'WEFT_E_FIELD_INVALID')
    if (text.length > 2 && text.endsWith('.*')) {
      // "/admin/.*" is the prefix "/admin/." (it misses "/admin/x"), not a regular expression.
      c.warn([...p, i], `"${text}" is the prefix "${text.slice(0, -1)}", not a regular expression; for everything under it write "${text.slice(0, -2)}*"`, 'WEFT_W_AUTHZ_REGEX_LIKE')
    }
    out.push(text)
  })
  if (isAllow && field.startsWith('not')) {
    c.warn(p, `negative match in an ALLOW policy: ${field} allows everything except what it lists, including requests nobody thought of; prefer positive matches in ALLOW and negative ones in DENY`, 'WEFT_W_AUTHZ_NEGATIVE_ALLOW')
  }
  return out
}
