// Checks of the JSON bodies the daemon takes. Every refusal is a 400 whose message names the field;
// unknown fields are refused too (never silently dropped: a typo like "lables" would otherwise
// register an instance without its labels) — except in the calls of an instance that speaks a newer
// control protocol than this daemon (protocol.ts): there a field added after this daemon was built
// is ignored and named back (`ignored`), so a rolling upgrade does not lock newer instances out.
// Nothing an instance sends widens what it may do: its identity and access come from its token.
import { isIP } from 'node:net'
import { DNS_NAME } from '../config/names.js'
import type { AckRequest, RegisterRequest } from '../control/protocol.js'
import { parseTraffic } from './traffic-parse.js'
import { onlyFields } from './fields.js'
import { MAX_WINDOW_MS, MIN_WINDOW_MS } from './traffic-board.js'
import type { TrafficReport } from '../telemetry/traffic-report.js'
import { printable } from '../util/printable.js'
import { badRequest, HttpError } from './http-error.js'

type Body = Record<string, unknown>

/** Instance ids: what `<service>-<random>` and most generated ids look like; no "/" or spaces. */
const INSTANCE_ID = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,126}[A-Za-z0-9])?$/
/** Label keys, Kubernetes-like: an optional DNS prefix and "/", then a name. */
const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/
/** Hostnames (RFC 1123 labels), checked when the address is not an IP literal. */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*\.?$/
const MAX_LABELS = 64
const MAX_LABEL_VALUE = 253
/** Service names one join token may list. */
const MAX_TOKEN_SERVICES = 256
/** A NACK's error text is kept for `weft status`; more than this is cut. */
export const MAX_NACK_ERROR = 16 * 1024
/** An ACK's `kept` list: at most this many keys ("Kind/namespace/name"), each at most MAX_KEPT_KEY characters. */
export const MAX_KEPT = 1000
const MAX_KEPT_KEY = 600


function name(v: unknown, field: string, required: boolean): string | undefined {
  if (v === undefined || v === null) {
    if (required) throw badRequest(`${field} is required`)
    return undefined
  }
  if (typeof v !== 'string' || v.length > 253 || !DNS_NAME.test(v)) {
    throw badRequest(`${field} must be a DNS-style name (lowercase letters, digits, "-" and ".", starting and ending with a letter or digit; got ${JSON.stringify(v)})`)
  }
  return v
}

function serving(body: Body, what: string, required: boolean): { address?: string; port?: number; protocol?: 'http' | 'grpc' } {
  const { address, port, protocol } = body
  if (address === undefined && port === undefined) {
    if (required) throw badRequest(`${what}: address and port are required`)
  } else {
    if (address === undefined) throw badRequest(`${what}: address is required with port`)
    if (port === undefined) throw badRequest(`${what}: port is required with address`)
    // No IPv6 zone ids ("fe80::1%eth0"): the address must survive the config's host:port parsing.
    if (typeof address !== 'string' || address.includes('%') || (isIP(address) === 0 && !HOSTNAME.test(address))) {
      throw badRequest(`${what}: address must be an IP address or a hostname, without a port (got ${JSON.stringify(address)})`)
    }
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw badRequest(`${what}: port must be an integer from 1 to 65535 (got ${JSON.stringify(port)})`)
    }
  }
  if (protocol !== undefined && protocol !== 'http' && protocol !== 'grpc') {
    throw badRequest(`${what}: protocol must be "http" or "grpc" (got ${JSON.stringify(protocol)})`)
  }
  return {
    ...(address !== undefined ? { address: address as string, port: port as number } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
  }
}

function labels(v: unknown): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest('labels must be an object of string values')
  const out: Record<string, string> = {}
  const entries = Object.entries(v)
  if (entries.length > MAX_LABELS) throw badRequest(`labels: at most ${MAX_LABELS} labels (got ${entries.length})`)
  for (const [k, val] of entries) {
    if (!LABEL_KEY.test(k)) throw badRequest(`labels: key ${JSON.stringify(k)} is not a label name (letters, digits, "-", "_", "." and an optional "prefix/")`)
    if (typeof val !== 'string') throw badRequest(`labels.${k} must be a string (got ${val === null ? 'null' : typeof val})`)
    if (val.length > MAX_LABEL_VALUE || /[\u0000-\u001f\u007f]/.test(val)) throw badRequest(`labels.${k}: at most ${MAX_LABEL_VALUE} characters, no control characters`)
    out[k] = val
  }
  return out
}

function locality(v: unknown, ignored?: string[]): RegisterRequest['locality'] {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest('locality must be an object { region?, zone? }')
  onlyFields(v as Body, ['region', 'zone'], 'locality', ignored)
  const { region, zone } = v as Body
  for (const [field, val] of [['region', region], ['zone', zone]] as const) {
    if (val !== undefined && (typeof val !== 'string' || val.length === 0 || val.length > MAX_LABEL_VALUE || /[\u0000-\u001f\u007f]/.test(val))) {
      throw badRequest(`locality.${field} must be a non-empty string`)
    }
  }
  return { ...(region !== undefined ? { region: region as string } : {}), ...(zone !== undefined ? { zone: zone as string } : {}) }
}

export function parseRegister(body: Body, ignored?: string[]): RegisterRequest & { namespace?: string } {
  onlyFields(body, ['id', 'service', 'namespace', 'address', 'port', 'protocol', 'labels', 'locality'], 'register', ignored)
  const service = name(body.service, 'service', true)!
  const namespace = name(body.namespace, 'namespace', false)
  let id: string | undefined
  if (body.id !== undefined) {
    if (typeof body.id !== 'string' || !INSTANCE_ID.test(body.id)) {
      throw badRequest(`id must be 1 to 128 letters, digits, "-", "_" or ".", starting and ending with a letter or digit (got ${JSON.stringify(body.id)})`)
    }
    id = body.id
  }
  const l = labels(body.labels)
  const loc = locality(body.locality, ignored)
  return {
    ...(id !== undefined ? { id } : {}),
    service,
    ...(namespace !== undefined ? { namespace } : {}),
    ...serving(body, 'register', false),
    ...(l !== undefined ? { labels: l } : {}),
    ...(loc !== undefined ? { locality: loc } : {}),
  }
}

/** PUT /v1/instances/:id: the instance started serving. */
export function parseUpdate(body: Body, ignored?: string[]): { address: string; port: number; protocol?: 'http' | 'grpc' } {
  onlyFields(body, ['address', 'port', 'protocol'], 'update', ignored)
  return serving(body, 'update', true) as { address: string; port: number; protocol?: 'http' | 'grpc' }
}

export function parseAck(body: Body, ignored?: string[]): AckRequest {
  onlyFields(body, ['version', 'error', 'kept'], 'ack', ignored)
  const { version, error } = body
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw badRequest(`version must be a non-negative integer (got ${JSON.stringify(version)})`)
  }
  if (error !== undefined && typeof error !== 'string') throw badRequest('error must be a string (the formatted issues) when present')
  const kept = keptKeys(body.kept)
  const withKept = kept !== undefined ? { kept } : {}
  if (error === undefined) return { version, ...withKept }
  // Shown by `weft status` and logged: see printable().
  const text = printable(error)
  return { version, error: text.length > MAX_NACK_ERROR ? text.slice(0, MAX_NACK_ERROR) + '…' : text, ...withKept }
}

/** An ACK's `kept`: absent (an older instance), or a list of short printable keys, each once. */
function keptKeys(v: unknown): string[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v) || v.length > MAX_KEPT) throw badRequest(`kept must be a list of at most ${MAX_KEPT} resource keys ("Kind/namespace/name")`)
  for (const [i, k] of v.entries()) {
    if (typeof k !== 'string' || k.length === 0 || k.length > MAX_KEPT_KEY || /[\u0000-\u001f\u007f]/.test(k)) {
      throw badRequest(`kept[${i}] must be a resource key of 1 to ${MAX_KEPT_KEY} characters, no control characters`)
    }
  }
  return [...new Set(v as string[])]
}

/** POST /v1/instances/:id/heartbeat: an empty body or {}, or `traffic` (protocol level 2, for `weft top`). */
export function parseHeartbeat(body: Body, ignored?: string[]): { traffic?: TrafficReport } {
  onlyFields(body, ['traffic'], 'heartbeat', ignored)
  return body.traffic === undefined ? {} : { traffic: parseTraffic(body.traffic, ignored) }
}

/** Content types POST /v1/policy takes (YAML or JSON text); none given is read as YAML. */
const POLICY_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'application/json', 'text/plain'])

/** 415 for a policy body of another type (a form post, a binary upload), before it is read. */
export function requirePolicyType(header: string | undefined): void {
  if (header === undefined || header.trim() === '') return
  const type = header.split(';')[0]!.trim().toLowerCase()
  if (!POLICY_TYPES.has(type)) {
    throw new HttpError(415, 'WEFT_ERR_INVALID_ARG', `content-type ${JSON.stringify(type)} is not a policy: send YAML or JSON (application/yaml, text/yaml or application/json)`)
  }
}

export function parseTokenRequest(body: Body): { services: string[]; namespace?: string } {
  onlyFields(body, ['services', 'namespace'], 'tokens')
  let services = ['*']
  if (body.services !== undefined) {
    if (!Array.isArray(body.services) || body.services.length === 0) throw badRequest('services must be a non-empty list of service names (or ["*"] for any)')
    // Each name once: the list is stored with the token and read on every registration.
    const named = new Set(body.services.map((s, i) => (s === '*' ? '*' : name(s, `services[${i}]`, true)!)))
    if (named.size > MAX_TOKEN_SERVICES) throw badRequest(`services: at most ${MAX_TOKEN_SERVICES} different names per join token (got ${named.size}); ["*"] allows any`)
    services = named.has('*') ? ['*'] : [...named]
  }
  const namespace = name(body.namespace, 'namespace', false)
  return { services, ...(namespace !== undefined ? { namespace } : {}) }
}

export function parseRollback(body: Body): number {
  onlyFields(body, ['version'], 'rollback')
  const { version } = body
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) {
    throw badRequest(`version must be a non-negative integer (got ${JSON.stringify(version)})`)
  }
  return version
}

/** ?version=N of a watch: absent, or a non-negative integer. */
/** GET /v1/top's `window`: seconds, 10 to 60 (default 30); answered in ms. */
export function parseWindowParam(v: string | null): number {
  if (v === null || v === '') return 30_000
  const m = /^(\d{1,3})(s?)$/.exec(v)
  const s = m ? Number(m[1]) : NaN
  if (!(s >= MIN_WINDOW_MS / 1000 && s <= MAX_WINDOW_MS / 1000)) throw badRequest(`window must be ${MIN_WINDOW_MS / 1000} to ${MAX_WINDOW_MS / 1000} seconds (got ${JSON.stringify(v.slice(0, 20))})`)
  return s * 1000
}

export function parseVersionParam(v: string | null): number | undefined {
  if (v === null || v === '') return undefined
  if (!/^\d{1,15}$/.test(v)) throw badRequest(`version must be a non-negative integer (got ${JSON.stringify(v)})`)
  return Number(v)
}
