// Compiles AuthorizationSettings into matchers once per config; re-checks the grammar so settings
// built in code (not through the validator) cannot widen access either (fail closed, S7).
import { parseWhenKey, portOf, valueError, whenValueKind, type AuthzValueKind, type WhenAttribute } from '../config/validate-authz.js'
import type { AuthorizationSettings, AuthzCondition, AuthzOperation, AuthzRule, AuthzSource } from '../config/types.js'
import { WeftError } from '../errors/index.js'
import { PatternSet } from './pattern.js'

/** Attribute codes for the `when` switch on the hot path. */
export const Attr = {
  HEADER: 0, SOURCE_PRINCIPAL: 1, SOURCE_NAMESPACE: 2, AUTH_PRINCIPAL: 3, AUTH_AUDIENCES: 4,
  AUTH_PRESENTER: 5, CLAIM: 6, DESTINATION_PORT: 7,
} as const

const ATTR_OF: Record<WhenAttribute['kind'], number> = {
  'header': Attr.HEADER, 'source.principal': Attr.SOURCE_PRINCIPAL, 'source.namespace': Attr.SOURCE_NAMESPACE,
  'request.auth.principal': Attr.AUTH_PRINCIPAL, 'request.auth.audiences': Attr.AUTH_AUDIENCES,
  'request.auth.presenter': Attr.AUTH_PRESENTER, 'claim': Attr.CLAIM, 'destination.port': Attr.DESTINATION_PORT,
}

/** Claims whose string value is a space-separated list (OAuth scope; Istio treats both so). */
const SPACE_DELIMITED_CLAIMS = new Set(['scope', 'permission'])

// Every field is present (null when absent) so each shape stays monomorphic on the hot path.
export interface CompiledSource {
  principals: PatternSet | null
  notPrincipals: PatternSet | null
  namespaces: PatternSet | null
  notNamespaces: PatternSet | null
  requestPrincipals: PatternSet | null
  notRequestPrincipals: PatternSet | null
}

export interface CompiledOperation {
  methods: readonly string[] | null
  notMethods: readonly string[] | null
  paths: PatternSet | null
  notPaths: PatternSet | null
  ports: readonly number[] | null
  notPorts: readonly number[] | null
}

export interface CompiledCondition {
  key: string
  attr: number
  /** Lowercase header name (HEADER). */
  header: string
  /** The Host header is matched lowercased, without port or trailing dot. */
  isHost: boolean
  /** Claim path (CLAIM). */
  claim: readonly string[]
  spaceDelimited: boolean
  values: PatternSet | null
  notValues: PatternSet | null
  /** DESTINATION_PORT values. */
  valuePorts: readonly number[] | null
  notValuePorts: readonly number[] | null
}

export interface CompiledRule {
  from: readonly CompiledSource[]
  to: readonly CompiledOperation[]
  when: readonly CompiledCondition[]
}

export interface CompiledPolicy {
  settings: AuthorizationSettings
  name: string
  rules: readonly CompiledRule[]
  /** Whether any rule reads the path / the method (a refused path or method then denies). */
  usesPath: boolean
  usesMethod: boolean
}

const SOURCE_KINDS: Record<keyof AuthzSource, AuthzValueKind> = {
  principals: 'principal', notPrincipals: 'principal', namespaces: 'namespace', notNamespaces: 'namespace',
  requestPrincipals: 'requestPrincipal', notRequestPrincipals: 'requestPrincipal',
}
const OPERATION_KINDS: Record<keyof AuthzOperation, AuthzValueKind> = {
  methods: 'method', notMethods: 'method', paths: 'path', notPaths: 'path', ports: 'port', notPorts: 'port',
}

/**
 * Compiles one policy. Throws WEFT_ERR_POLICY_INVALID (naming the policy and field) on anything
 * the validator would refuse: the caller NACKs and keeps the previous config.
 */
export function compilePolicy(p: AuthorizationSettings): CompiledPolicy {
  const fail = (field: string, problem: string): never => {
    throw new WeftError('WEFT_ERR_POLICY_INVALID', `AuthorizationPolicy ${p.namespace}/${p.name} ${field}: ${problem}`, { details: { policy: p.name, field } })
  }
  if (!['ALLOW', 'DENY', 'AUDIT'].includes(p.action)) fail('spec.action', `unknown action ${JSON.stringify(p.action)}`)
  const fold = p.ignorePathCase === true
  let usesPath = false
  let usesMethod = false

  const patterns = (list: readonly unknown[] | undefined, field: string, kind: AuthzValueKind, ignoreCase = false): PatternSet | null => {
    const values = checkedList(list, field, kind, fail)
    return values === null ? null : new PatternSet(values, ignoreCase)
  }
  const exacts = (list: readonly unknown[] | undefined, field: string, kind: AuthzValueKind): string[] | null =>
    checkedList(list, field, kind, fail)

  const rules = (p.rules ?? []).map((rule: AuthzRule, i): CompiledRule => {
    const at = `spec.rules[${i}]`
    const from = (rule.from ?? []).map((s, j): CompiledSource => {
      const f = `${at}.from[${j}]`
      checkFields(s, SOURCE_KINDS, f, fail)
      return {
        principals: patterns(s.principals, `${f}.principals`, 'principal'),
        notPrincipals: patterns(s.notPrincipals, `${f}.notPrincipals`, 'principal'),
        namespaces: patterns(s.namespaces, `${f}.namespaces`, 'namespace'),
        notNamespaces: patterns(s.notNamespaces, `${f}.notNamespaces`, 'namespace'),
        requestPrincipals: patterns(s.requestPrincipals, `${f}.requestPrincipals`, 'requestPrincipal'),
        notRequestPrincipals: patterns(s.notRequestPrincipals, `${f}.notRequestPrincipals`, 'requestPrincipal'),
      }
    })
    const to = (rule.to ?? []).map((o, j): CompiledOperation => {
      const f = `${at}.to[${j}]`
      checkFields(o, OPERATION_KINDS, f, fail)
      if (o.paths !== undefined || o.notPaths !== undefined) usesPath = true
      if (o.methods !== undefined || o.notMethods !== undefined) usesMethod = true
      return {
        methods: exacts(o.methods, `${f}.methods`, 'method'),
        notMethods: exacts(o.notMethods, `${f}.notMethods`, 'method'),
        paths: patterns(o.paths, `${f}.paths`, 'path', fold),
        notPaths: patterns(o.notPaths, `${f}.notPaths`, 'path', fold),
        ports: toPorts(exacts(o.ports, `${f}.ports`, 'port')),
        notPorts: toPorts(exacts(o.notPorts, `${f}.notPorts`, 'port')),
      }
    })
    const when = (rule.when ?? []).map((w, j) => compileCondition(w, `${at}.when[${j}]`, fail, patterns, exacts))
    return { from, to, when }
  })
  return { settings: p, name: p.name, rules, usesPath, usesMethod }
}

type Fail = (field: string, problem: string) => never

function checkedList(list: readonly unknown[] | undefined, field: string, kind: AuthzValueKind, fail: Fail): string[] | null {
  if (list === undefined) return null
  if (!Array.isArray(list) || list.length === 0) fail(field, 'must be a non-empty list (absent means any)')
  return list.map((v, i) => {
    const text = typeof v === 'number' && kind === 'port' ? String(v) : v
    if (typeof text !== 'string') return fail(`${field}[${i}]`, 'must be a string')
    const err = valueError(kind, text)
    return err ? fail(`${field}[${i}]`, err) : text
  })
}

function checkFields(entry: object, known: Record<string, unknown>, field: string, fail: Fail): void {
  const keys = Object.keys(entry).filter((k) => (entry as Record<string, unknown>)[k] !== undefined)
  for (const k of keys) if (!(k in known)) fail(`${field}.${k}`, `unknown field "${k}"`)
  if (keys.length === 0) fail(field, 'an empty entry would match everything')
}

function toPorts(list: string[] | null): number[] | null {
  return list === null ? null : list.map((v) => portOf(v)!)
}

function compileCondition(w: AuthzCondition, field: string, fail: Fail,
  patterns: (l: readonly unknown[] | undefined, f: string, k: AuthzValueKind) => PatternSet | null,
  exacts: (l: readonly unknown[] | undefined, f: string, k: AuthzValueKind) => string[] | null): CompiledCondition {
  checkFieldsOf(w, ['key', 'values', 'notValues'], field, fail)
  const attr = typeof w.key === 'string' ? parseWhenKey(w.key) : 'the key must be a string'
  if (typeof attr === 'string') return fail(`${field}.key`, attr)
  if (w.values === undefined && w.notValues === undefined) fail(field, 'needs values, notValues or both')
  const kind = whenValueKind(attr)
  const isPort = attr.kind === 'destination.port'
  return {
    key: w.key,
    attr: ATTR_OF[attr.kind],
    header: attr.kind === 'header' ? attr.name : '',
    isHost: attr.kind === 'header' && attr.name === 'host',
    claim: attr.kind === 'claim' ? attr.path : [],
    spaceDelimited: attr.kind === 'claim' && attr.path.length === 1 && SPACE_DELIMITED_CLAIMS.has(attr.path[0]!),
    values: isPort ? null : patterns(w.values, `${field}.values`, kind),
    notValues: isPort ? null : patterns(w.notValues, `${field}.notValues`, kind),
    valuePorts: isPort ? toPorts(exacts(w.values, `${field}.values`, kind)) : null,
    notValuePorts: isPort ? toPorts(exacts(w.notValues, `${field}.notValues`, kind)) : null,
  }
}

function checkFieldsOf(entry: object, known: readonly string[], field: string, fail: Fail): void {
  for (const k of Object.keys(entry)) if (!known.includes(k)) fail(`${field}.${k}`, `unknown field "${k}"`)
}
