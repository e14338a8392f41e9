// AuthorizationPolicy validation. STUB: being written (identity issue); accepts nothing yet.
import type { Checker } from './checker.js'
import type { AuthorizationSettings, ServiceSettings } from './types.js'

export function validateAuthorizationPolicy(c: Checker, _name: string, _namespace: string, _spec: unknown, _order: number, _services: Map<string, ServiceSettings>): AuthorizationSettings | undefined {
  c.error(['kind'], 'AuthorizationPolicy is not supported yet', 'WEFT_E_KIND_UNKNOWN')
  return undefined
}
