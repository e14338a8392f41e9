// MeshConfig (trust domain, mesh-wide mTLS mode, default authorization) and PeerAuthentication
// (the mTLS mode for one namespace or service) validation.
import type { Checker } from './checker.js'
import type { MeshSettings, MtlsMode, PeerAuthSettings, ServiceSettings } from './types.js'
import { DNS_NAME } from './names.js'

const MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const

/** A SPIFFE trust domain: lowercase letters, digits, '.', '-', '_' (SPIFFE-ID §2.1), ≤ 255. */
export const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/

export function validateMeshConfig(c: Checker, rawSpec: unknown, defaults: MeshSettings): MeshSettings {
  const spec = c.object(rawSpec ?? {}, ['spec'], ['trustDomain', 'mtls', 'defaultAuthorization'])
  return {
    trustDomain: c.string(spec?.trustDomain, ['spec', 'trustDomain'], { pattern: TRUST_DOMAIN }) ?? defaults.trustDomain,
    mtls: (c.string(spec?.mtls, ['spec', 'mtls'], { oneOf: MODES }) ?? defaults.mtls) as MtlsMode,
    defaultAuthorization: (c.string(spec?.defaultAuthorization, ['spec', 'defaultAuthorization'], { oneOf: ['ALLOW', 'DENY'] }) ?? defaults.defaultAuthorization) as MeshSettings['defaultAuthorization'],
  }
}

export function validatePeerAuthentication(c: Checker, name: string, namespace: string, rawSpec: unknown, services: Map<string, ServiceSettings>): PeerAuthSettings | undefined {
  const spec = c.object(rawSpec, ['spec'], ['service', 'mtls'])
  if (!spec) {
    c.error(['spec'], 'is required (want { service?, mtls: STRICT|PERMISSIVE|DISABLE })', 'WEFT_E_FIELD_REQUIRED')
    return undefined
  }
  const service = c.string(spec.service, ['spec', 'service'], { pattern: DNS_NAME })
  const mtls = c.string(spec.mtls, ['spec', 'mtls'], { required: true, oneOf: MODES }) as MtlsMode | undefined
  if (service !== undefined && !services.has(service)) {
    // Registry-only services have no Service resource; a PeerAuthentication may still name one.
    c.warn(['spec', 'service'], `no Service "${service}" in this config (fine if it registers with the daemon)`, 'WEFT_W_SERVICE_UNKNOWN')
  }
  if (!mtls) return undefined
  return { name, namespace, ...(service !== undefined ? { service } : {}), mtls }
}
