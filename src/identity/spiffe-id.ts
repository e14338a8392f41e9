// SPIFFE IDs, parsed by the SPIFFE-ID spec (RELIABILITY M4) and compared as parsed values, never
// by regex or prefix over the raw string (CVE-2026-39350 was a regex dot).
import { WeftError } from '../errors/index.js'

/** A parsed, valid SPIFFE ID. Two IDs are the same identity when `sameSpiffeId` says so. */
export interface SpiffeId {
  /** `[a-z0-9._-]{1,255}`. */
  readonly trustDomain: string
  /** `''` for a trust-domain ID (`spiffe://td`), else `/seg/seg…`. */
  readonly path: string
  /** The canonical `spiffe://<trustDomain><path>`. */
  toString(): string
}

/** The workload part of `spiffe://td/ns/<namespace>/sa/<service>`. */
export interface WorkloadName {
  readonly namespace: string
  readonly service: string
}

const SCHEME = 'spiffe://'
const MAX_ID_BYTES = 2048
const MAX_TRUST_DOMAIN_CHARS = 255
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/
const SEGMENT_CHARS = /^[A-Za-z0-9._-]+$/

class ParsedSpiffeId implements SpiffeId {
  private readonly text: string
  constructor(readonly trustDomain: string, readonly path: string) {
    this.text = SCHEME + trustDomain + path
    Object.freeze(this)
  }
  toString(): string {
    return this.text
  }
  toJSON(): string {
    return this.text
  }
}

/**
 * Parses a SPIFFE ID. A trust-domain ID (`spiffe://td`, no path) is valid here; a workload
 * certificate needs a path, which `checkSvid` and `CertificateAuthority.sign` require.
 * @throws WeftError WEFT_ERR_INVALID_ARG whose message says which rule failed.
 * @example parseSpiffeId('spiffe://weft.local/ns/default/sa/payments').trustDomain // 'weft.local'
 */
export function parseSpiffeId(text: string): SpiffeId {
  const parts = splitSpiffeId(text)
  if (typeof parts === 'string') {
    throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid SPIFFE ID ${shown(text)}: ${parts}`, { details: { reason: parts } })
  }
  return new ParsedSpiffeId(parts.trustDomain, parts.path)
}

/** Like `parseSpiffeId`, for untrusted input on a hot path: undefined instead of an exception. */
export function trySpiffeId(text: string): SpiffeId | undefined {
  const parts = splitSpiffeId(text)
  return typeof parts === 'string' ? undefined : new ParsedSpiffeId(parts.trustDomain, parts.path)
}

/** Why `text` is not a SPIFFE ID, or undefined when it is one. */
export function spiffeIdProblem(text: string): string | undefined {
  const parts = splitSpiffeId(text)
  return typeof parts === 'string' ? parts : undefined
}

/** Same identity: same trust domain and same path (both are canonical once parsed: no case folding). */
export function sameSpiffeId(a: SpiffeId, b: SpiffeId): boolean {
  return a.trustDomain === b.trustDomain && a.path === b.path
}

/** True for `spiffe://td` (the ID signing certificates carry), false for a workload ID. */
export function isTrustDomainId(id: SpiffeId): boolean {
  return id.path === ''
}

/**
 * The trust-domain ID `spiffe://<trustDomain>`.
 * @throws WeftError WEFT_ERR_INVALID_ARG for a trust domain outside `[a-z0-9._-]{1,255}`.
 */
export function trustDomainId(trustDomain: string): SpiffeId {
  return new ParsedSpiffeId(validTrustDomain(trustDomain), '')
}

/**
 * A workload's ID, `spiffe://<td>/ns/<namespace>/sa/<service>` (identity-plan "Names").
 * @throws WeftError WEFT_ERR_INVALID_ARG naming the part that is not a valid trust domain or path segment.
 * @example workloadId('weft.local', 'default', 'payments').toString() // 'spiffe://weft.local/ns/default/sa/payments'
 */
export function workloadId(trustDomain: string, namespace: string, service: string): SpiffeId {
  validTrustDomain(trustDomain)
  for (const [name, value] of [['namespace', namespace], ['service', service]] as const) {
    const problem = segmentProblem(value)
    if (problem) throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid SPIFFE ID ${name} ${shown(value)}: ${problem}`, { details: { option: name, reason: problem } })
  }
  return new ParsedSpiffeId(trustDomain, `/ns/${namespace}/sa/${service}`)
}

/** The namespace and service of a workload ID (path exactly `/ns/<ns>/sa/<svc>`), else undefined. */
export function workloadOf(id: SpiffeId): WorkloadName | undefined {
  const segments = id.path.split('/')
  if (segments.length !== 5 || segments[1] !== 'ns' || segments[3] !== 'sa') return undefined
  return { namespace: segments[2]!, service: segments[4]! }
}

/**
 * Returns `trustDomain` when it is valid (`[a-z0-9._-]{1,255}`, M4).
 * @throws WeftError WEFT_ERR_INVALID_ARG saying why not.
 */
export function validTrustDomain(trustDomain: string): string {
  const problem = typeof trustDomain === 'string' ? trustDomainProblem(trustDomain) : 'not a string'
  if (problem) throw new WeftError('WEFT_ERR_INVALID_ARG', `invalid trust domain ${shown(trustDomain)}: ${problem}`, { details: { option: 'trustDomain', reason: problem } })
  return trustDomain
}

/** Splits and checks; a string is the reason the text is not a SPIFFE ID. */
function splitSpiffeId(text: unknown): { trustDomain: string; path: string } | string {
  if (typeof text !== 'string') return 'not a string'
  // Length first: every later check is linear, but there is no reason to run them on megabytes.
  if (text.length > MAX_ID_BYTES || Buffer.byteLength(text) > MAX_ID_BYTES) return `longer than ${MAX_ID_BYTES} bytes`
  if (!text.startsWith(SCHEME)) {
    return text.toLowerCase().startsWith(SCHEME) ? 'the scheme must be lowercase "spiffe://"' : 'the scheme must be "spiffe://"'
  }
  // These characters are invalid everywhere in an ID; naming the URI feature they start is clearer
  // than "bad character" (and a percent-decoding parser would see a different ID: refuse, never decode).
  if (text.includes('%')) return 'percent-encoding is not allowed'
  if (text.includes('?')) return 'a query is not allowed'
  if (text.includes('#')) return 'a fragment is not allowed'
  const rest = text.slice(SCHEME.length)
  const slash = rest.indexOf('/')
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash)
  const path = slash === -1 ? '' : rest.slice(slash)
  const tdProblem = trustDomainProblem(trustDomain)
  if (tdProblem) return tdProblem
  if (path === '') return { trustDomain, path }
  for (const segment of path.slice(1).split('/')) {
    const problem = segmentProblem(segment)
    if (problem) return problem
  }
  return { trustDomain, path }
}

function trustDomainProblem(td: string): string | undefined {
  if (td === '') return 'the trust domain is empty'
  if (td.includes('@')) return 'userinfo is not allowed'
  if (/^[^:]*:\d*$/.test(td)) return 'a port is not allowed'
  if (td.length > MAX_TRUST_DOMAIN_CHARS) return `the trust domain is longer than ${MAX_TRUST_DOMAIN_CHARS} characters`
  if (TRUST_DOMAIN_CHARS.test(td)) return undefined
  return /[A-Z]/.test(td) ? 'the trust domain must be lowercase' : 'the trust domain may only contain [a-z0-9._-]'
}

function segmentProblem(segment: string): string | undefined {
  if (typeof segment !== 'string') return 'not a string'
  if (segment === '') return 'empty path segment ("//" or a trailing "/")'
  if (segment === '.' || segment === '..') return `"${segment}" path segments are not allowed`
  if (!SEGMENT_CHARS.test(segment)) return 'path segments may only contain [A-Za-z0-9._-]'
  return undefined
}

/** The input as it may appear in a message: quoted (control characters escaped) and cut short. */
function shown(value: unknown): string {
  const s = String(value)
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s)
}
