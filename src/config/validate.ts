// Validates loaded resources into a MeshPolicy: envelope (apiVersion/kind/metadata), then each
// kind's spec, then cross-resource checks (references, shadowed routes). Collects every issue.
import { Checker } from './checker.js'
import { DNS_NAME } from './names.js'
import type { LoadResult, RawResource } from './load.js'
import { findShadowedRules } from './overlap.js'
import type { AuthorizationSettings, ConfigIssue, MeshPolicy, MeshSettings, RequestAuthSettings, RevocationSettings, RouteSettings, ServiceSettings } from './types.js'
import { validateRoute } from './validate-route.js'
import { validateService } from './validate-service.js'
import { validateAuthorizationPolicy } from './validate-authz.js'
import { validateRequestAuthentication } from './validate-authn.js'
import { validateMeshConfig, validatePeerAuthentication } from './validate-mesh.js'
import { validateIdentityRevocation } from './validate-revocation.js'
import { FOREIGN_GROUPS, translateForeign } from './translate/index.js'

const KINDS = ['Service', 'Route', 'MeshConfig', 'PeerAuthentication', 'AuthorizationPolicy', 'RequestAuthentication', 'IdentityRevocation'] as const

interface Envelope {
  raw: RawResource
  kind: (typeof KINDS)[number]
  name: string
  namespace: string
  spec: unknown
  checker: Checker
}

export function validatePolicy(loaded: LoadResult): MeshPolicy {
  const issues: ConfigIssue[] = [...loaded.issues]
  const envelopes: Envelope[] = []
  // SMI and Gateway API resources become the Weft resources they stand for (config/translate).
  for (const raw of translateForeign(loaded.resources, issues)) {
    const env = readEnvelope(raw, issues)
    if (env) envelopes.push(env)
  }
  const seen = new Map<string, Envelope>()
  for (const env of envelopes) {
    const key = `${env.kind}/${env.namespace}/${env.name}`
    if (seen.has(key)) env.checker.error(['metadata', 'name'], `duplicate ${env.kind} "${env.name}" in namespace ${env.namespace}`, 'WEFT_E_DUPLICATE')
    seen.set(key, env)
  }

  const services = new Map<string, ServiceSettings>()
  for (const env of envelopes.filter((e) => e.kind === 'Service')) {
    const s = validateService(env.checker, env.name, env.namespace, env.spec)
    if (s) services.set(s.name, s)
  }
  const routes: RouteSettings[] = []
  for (const env of envelopes.filter((e) => e.kind === 'Route')) {
    const r = validateRoute(env.checker, env.name, env.namespace, env.spec, env.raw.index, services)
    if (r) routes.push(r)
  }
  let mesh: MeshSettings = { trustDomain: 'weft.local', mtls: 'STRICT', defaultAuthorization: 'ALLOW' }
  const meshConfigs = envelopes.filter((e) => e.kind === 'MeshConfig')
  for (const env of meshConfigs.slice(1)) env.checker.error(['metadata', 'name'], `only one MeshConfig is allowed (already have "${meshConfigs[0]!.name}")`, 'WEFT_E_DUPLICATE')
  if (meshConfigs[0]) mesh = validateMeshConfig(meshConfigs[0].checker, meshConfigs[0].spec, mesh)
  const peerAuthentication = envelopes.filter((e) => e.kind === 'PeerAuthentication')
    .map((e) => validatePeerAuthentication(e.checker, e.name, e.namespace, e.spec, services))
    .filter((p) => p !== undefined)
  const authorization: AuthorizationSettings[] = []
  for (const env of envelopes.filter((e) => e.kind === 'AuthorizationPolicy')) {
    const a = validateAuthorizationPolicy(env.checker, env.name, env.namespace, env.spec, env.raw.index, services)
    if (a) authorization.push(a)
  }
  const requestAuthentication: RequestAuthSettings[] = []
  for (const env of envelopes.filter((e) => e.kind === 'RequestAuthentication')) {
    const a = validateRequestAuthentication(env.checker, env.name, env.namespace, env.spec, env.raw.index, services)
    if (a) requestAuthentication.push(a)
  }
  const revocations: RevocationSettings[] = []
  for (const env of envelopes.filter((e) => e.kind === 'IdentityRevocation')) {
    const r = validateIdentityRevocation(env.checker, env.name, env.namespace, env.spec)
    if (r) revocations.push(r)
  }

  for (const s of findShadowedRules(routes)) {
    const env = envelopes.find((e) => e.kind === 'Route' && e.name === s.route.name)!
    const by = s.byRoute === s.route ? `rule ${s.byRuleIndex}` : `rule ${s.byRuleIndex} of Route "${s.byRoute.name}"`
    env.checker.warn(['spec', 'rules', s.ruleIndex, 'matches'],
      `overlapping routes: this rule can never match because ${by} (evaluated first) matches every request it matches; first match wins, rules are not merged`,
      'WEFT_W_ROUTE_SHADOWED')
  }
  return { services, routes, mesh, peerAuthentication, authorization, requestAuthentication, revocations, issues }
}

function readEnvelope(raw: RawResource, issues: ConfigIssue[]): Envelope | undefined {
  const v = raw.value as Record<string, unknown> | null
  const label = raw.translated ? raw.translated.label : typeof v === 'object' && v !== null
    ? `${typeof v.kind === 'string' ? v.kind : '?'}/${typeof (v.metadata as Record<string, unknown> | undefined)?.name === 'string' ? (v.metadata as Record<string, string>).name : '?'}`
    : `resource #${raw.index + 1}`
  const c = new Checker(raw, label, issues)
  const obj = c.object(v, [], ['apiVersion', 'kind', 'metadata', 'spec'])
  if (!obj) return undefined
  if (obj.apiVersion !== 'weft/v1') c.error(['apiVersion'], `must be "weft/v1", or an SMI / Gateway API version Weft translates (${Object.keys(FOREIGN_GROUPS).join(', ')}) (got ${JSON.stringify(obj.apiVersion)})`)
  const kind = c.string(obj.kind, ['kind'], { required: true })
  if (kind !== undefined && !(KINDS as readonly string[]).includes(kind)) {
    c.error(['kind'], `unknown kind "${kind}" (this version understands ${KINDS.join(', ')})`, 'WEFT_E_KIND_UNKNOWN')
    return undefined
  }
  const meta = c.object(obj.metadata, ['metadata'], ['name', 'namespace', 'labels', 'annotations'])
  const name = c.string(meta?.name, ['metadata', 'name'], { required: true, pattern: DNS_NAME })
  const namespace = c.string(meta?.namespace, ['metadata', 'namespace'], { pattern: DNS_NAME }) ?? 'default'
  if (!kind || !name) return undefined
  return { raw, kind: kind as Envelope['kind'], name, namespace, spec: obj.spec, checker: c }
}

/** One line per issue: "file:line:col error CODE Kind/name field: message". */
export function formatIssue(i: ConfigIssue): string {
  const where = i.file ? `${i.file}:${i.line ?? '?'}:${i.column ?? '?'} ` : i.line ? `${i.line}:${i.column} ` : ''
  return `${where}${i.severity} ${i.code} ${i.resource}${i.path ? ` ${i.path}` : ''}: ${i.message}`
}
