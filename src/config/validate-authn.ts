// RequestAuthentication validation. STUB: being written (identity issue); accepts nothing yet.
import type { Checker } from './checker.js'
import type { RequestAuthSettings, ServiceSettings } from './types.js'

export function validateRequestAuthentication(c: Checker, _name: string, _namespace: string, _spec: unknown, _order: number, _services: Map<string, ServiceSettings>): RequestAuthSettings | undefined {
  c.error(['kind'], 'RequestAuthentication is not supported yet', 'WEFT_E_KIND_UNKNOWN')
  return undefined
}
