// The authorization engine for one service: DENY first, then ALLOW (any ALLOW selecting the
// service denies what none of them matches), then the mesh default; AUDIT only reports.
import type { AuthorizationSettings } from '../config/types.js'
import { compilePolicy, type CompiledPolicy } from './compile.js'
import { ruleWhyNot } from './explain.js'
import { firstMatchingRule, isMethodToken, ruleMatches } from './match.js'
import { normalizePath } from './normalize-path.js'
import type { AuthzDecision, AuthzExplanation, AuthzOptions, AuthzRequest, PolicyExplanation } from './types.js'

const NONE: readonly string[] = Object.freeze([])

function decision(d: Omit<AuthzDecision, 'audited'>): AuthzDecision {
  return Object.freeze({ ...d, audited: NONE })
}

interface Enforced {
  policy: CompiledPolicy
  /** One frozen decision per rule, made once. */
  decisions: readonly AuthzDecision[]
}

/** Whether a policy selects the service: same namespace, and no service or the same one. */
function selects(p: AuthorizationSettings, o: AuthzOptions): boolean {
  return p.namespace === o.namespace && (p.service === undefined || p.service === o.service)
}

export class AuthzEngine {
  /** False when nothing applies and the default is ALLOW: every request is allowed ('no-policy'). */
  readonly active: boolean
  /** Names of the policies that select the service, in config order. */
  readonly policies: readonly string[]
  private readonly deny: readonly Enforced[]
  private readonly allow: readonly Enforced[]
  private readonly audit: readonly CompiledPolicy[]
  private readonly all: readonly AuthorizationSettings[]
  private readonly compiled: ReadonlyMap<AuthorizationSettings, CompiledPolicy>
  private readonly fallback: AuthzDecision
  private readonly noAllow: AuthzDecision
  private readonly pathInvalid = decision({ allowed: false, reason: 'path-invalid' })
  private readonly methodInvalid = decision({ allowed: false, reason: 'method-invalid' })
  /** A refused path/method denies only when an enforcing (DENY/ALLOW) policy reads it. */
  private readonly enforcedPath: boolean
  private readonly enforcedMethod: boolean
  private readonly needsPath: boolean
  private readonly needsMethod: boolean

  /**
   * Compiles every policy that selects the service (throws WEFT_ERR_POLICY_INVALID on a policy it
   * cannot fully understand). Prefer compileAuthz, which skips the layer when nothing applies.
   */
  constructor(policies: readonly AuthorizationSettings[], readonly options: AuthzOptions) {
    this.all = [...policies].sort((a, b) => a.order - b.order)
    const compiled = new Map<AuthorizationSettings, CompiledPolicy>()
    for (const p of this.all) if (selects(p, options)) compiled.set(p, compilePolicy(p))
    this.compiled = compiled
    const selected = [...compiled.values()]
    const enforced = (action: string, allowed: boolean): Enforced[] => selected.filter((c) => c.settings.action === action).map((policy) => ({
      policy,
      decisions: policy.rules.map((_, rule) => decision({ allowed, policy: policy.name, rule, reason: allowed ? 'allow-matched' : 'deny-matched' })),
    }))
    this.deny = enforced('DENY', false)
    this.allow = enforced('ALLOW', true)
    this.audit = selected.filter((c) => c.settings.action === 'AUDIT')
    this.policies = selected.map((c) => c.name)
    const enforcing = [...this.deny, ...this.allow].map((e) => e.policy)
    this.enforcedPath = enforcing.some((c) => c.usesPath)
    this.enforcedMethod = enforcing.some((c) => c.usesMethod)
    this.needsPath = selected.some((c) => c.usesPath)
    this.needsMethod = selected.some((c) => c.usesMethod)
    // Every ALLOW policy could have allowed the request, so a miss names them all (a fixed,
    // config-derived string: fine as a metric label).
    this.noAllow = decision({ allowed: false, policy: this.allow.map((e) => e.policy.name).join(','), reason: 'no-allow-matched' })
    const denyByDefault = (options.defaultAuthorization ?? 'ALLOW') === 'DENY'
    this.fallback = decision({ allowed: !denyByDefault, reason: denyByDefault ? 'default-deny' : 'no-policy' })
    this.active = selected.length > 0 || denyByDefault
  }

  /**
   * Decides one request. Allocates nothing beyond the normalised path (when it differs from the
   * raw one) and, when AUDIT policies match, the decision that lists them.
   */
  evaluate(req: AuthzRequest): AuthzDecision {
    const path = this.needsPath ? normalizePath(req.path) : req.path
    const method = this.needsMethod && !isMethodToken(req.method) ? undefined : req.method
    let audited: string[] | undefined
    for (const p of this.audit) {
      if (firstMatchingRule(p, req, path, method) >= 0) (audited ??= []).push(p.name)
    }
    const d = this.decide(req, path, method)
    return audited === undefined ? d : { ...d, audited }
  }

  private decide(req: AuthzRequest, path: string | undefined, method: string | undefined): AuthzDecision {
    if (path === undefined && this.enforcedPath) return this.pathInvalid
    if (method === undefined && this.enforcedMethod) return this.methodInvalid
    for (const e of this.deny) {
      const rule = firstMatchingRule(e.policy, req, path, method)
      if (rule >= 0) return e.decisions[rule]!
    }
    if (this.allow.length === 0) return this.fallback
    for (const e of this.allow) {
      const rule = firstMatchingRule(e.policy, req, path, method)
      if (rule >= 0) return e.decisions[rule]!
    }
    return this.noAllow
  }

  /**
   * The decision and, per policy of the config in order, whether it selects this service and
   * which rule matched or why each did not: "would this caller be allowed, and by which rule".
   */
  explain(req: AuthzRequest): AuthzExplanation {
    const decision = this.evaluate(req)
    const path = normalizePath(req.path)
    const method = this.needsMethod && !isMethodToken(req.method) ? undefined : req.method
    const policies = this.all.map((p): PolicyExplanation => {
      const base = { name: p.name, namespace: p.namespace, ...(p.service !== undefined ? { service: p.service } : {}), action: p.action }
      const c = this.compiled.get(p)
      if (c === undefined) {
        const notApplied = p.namespace !== this.options.namespace
          ? `it is in namespace "${p.namespace}", not "${this.options.namespace}"`
          : `it selects service "${p.service}", not "${this.options.service}"`
        return { ...base, applies: false, notApplied, rules: [] }
      }
      const rules = c.rules.map((rule, index) => {
        const matched = ruleMatches(rule, req, path, method)
        return matched ? { index, matched } : { index, matched, why: ruleWhyNot(rule, req, path, method) ?? 'does not match' }
      })
      const first = rules.find((r) => r.matched)
      return { ...base, applies: true, ...(first ? { matchedRule: first.index } : {}), rules }
    })
    return { decision, path, policies }
  }
}

/**
 * Compiles the policies that select `options.service` in `options.namespace` into an engine, or
 * returns undefined when none does and the default is ALLOW, so the caller skips the layer at no
 * cost. Throws WEFT_ERR_POLICY_INVALID (the caller NACKs) on a policy it cannot fully understand.
 *
 * @example
 * const authz = compileAuthz(policy.authorization, { service: 'payments', namespace: 'default', defaultAuthorization: policy.mesh.defaultAuthorization })
 * const d = authz?.evaluate({ principal, namespace, method: req.method, path: req.url, port, headers: req.headers })
 * if (d && !d.allowed) // 403 WEFT_ERR_FORBIDDEN with details { policy: d.policy, rule: d.rule }
 */
export function compileAuthz(policies: readonly AuthorizationSettings[], options: AuthzOptions): AuthzEngine | undefined {
  const engine = new AuthzEngine(policies, options)
  return engine.active ? engine : undefined
}
