// createMesh options: validated at build time with a message naming the option (undici's habit).
import type { Tracer } from '@opentelemetry/api'
import type { Registry } from 'prom-client'
import { invalidArg } from './errors/index.js'
import type { ConfigInput } from './config/source.js'
import type { Logger } from './util/logger.js'
import { isIP } from 'node:net'
import { DNS_NAME } from './config/names.js'
import { splitHostPort } from './util/host-port.js'

export interface MeshOptions {
  /** This workload's name: its identity and its source_service label. Required. */
  service: string
  /** Namespace of this workload. Default "default". */
  namespace?: string
  /** Static policy: a YAML/JSON file path (watched) or resources as a JS object/array. */
  config?: ConfigInput
  /** prom-client Registry to register metrics in. Default: a new Registry per mesh. */
  registry?: Registry
  /** Where this instance runs; `zone` drives locality-aware balancing. */
  locality?: { region?: string; zone?: string }
  /** Logger for config reloads, ejections, discovery. Default: one line per event on stderr. */
  logger?: Logger
  /** OpenTelemetry tracer. Default: trace.getTracer('weft') (a no-op until an SDK is registered). */
  tracer?: Tracer
  /** DNS servers ("ip" or "ip:port") for dns discovery. Default: the system's. */
  dnsServers?: string[]
  /** Control daemon URL(s); the daemon client arrives with the control-plane issue. */
  control?: string | string[]
  token?: string
  stateDir?: string
}

const KNOWN = new Set(['service', 'namespace', 'config', 'registry', 'locality', 'logger', 'tracer', 'dnsServers', 'control', 'token', 'stateDir'])

export function checkOptions(o: unknown): MeshOptions {
  if (typeof o !== 'object' || o === null) invalidArg('options', 'createMesh needs an options object with at least { service }')
  const opts = o as Record<string, unknown>
  for (const key of Object.keys(opts)) if (!KNOWN.has(key)) invalidArg(key, `unknown option (known: ${[...KNOWN].join(', ')})`)
  if (typeof opts.service !== 'string' || !DNS_NAME.test(opts.service)) invalidArg('service', `must be a lowercase DNS-style name like "checkout" (got ${JSON.stringify(opts.service)})`)
  if (opts.namespace !== undefined && (typeof opts.namespace !== 'string' || !DNS_NAME.test(opts.namespace))) invalidArg('namespace', `must be a lowercase DNS-style name (got ${JSON.stringify(opts.namespace)})`)
  if (opts.config !== undefined && typeof opts.config !== 'string' && (typeof opts.config !== 'object' || opts.config === null)) invalidArg('config', 'must be a file path or an object/array of resources')
  if (opts.registry !== undefined && typeof (opts.registry as Registry | null)?.metrics !== 'function') invalidArg('registry', 'must be a prom-client Registry')
  if (opts.locality !== undefined) {
    const l = opts.locality as Record<string, unknown>
    if (typeof l !== 'object' || l === null) invalidArg('locality', 'must be { region?, zone? }')
    for (const k of ['region', 'zone']) if (l[k] !== undefined && typeof l[k] !== 'string') invalidArg(`locality.${k}`, 'must be a string')
  }
  if (opts.logger !== undefined) {
    const l = opts.logger as Record<string, unknown>
    if (typeof l?.info !== 'function' || typeof l.warn !== 'function' || typeof l.error !== 'function') invalidArg('logger', 'must have info, warn and error methods')
  }
  if (opts.tracer !== undefined && typeof (opts.tracer as Tracer | null)?.startSpan !== 'function') invalidArg('tracer', 'must be an OpenTelemetry Tracer')
  if (opts.dnsServers !== undefined) {
    if (!Array.isArray(opts.dnsServers)) invalidArg('dnsServers', 'must be a list of "ip" or "ip:port"')
    for (const s of opts.dnsServers) if (typeof s !== 'string' || (!isIP(s) && !splitHostPort(s, true))) invalidArg('dnsServers', `"${String(s)}" is not an IP or IP:port`)
  }
  if (opts.control !== undefined) invalidArg('control', 'the control daemon client is not part of this version yet; use config (a file or object) for now')
  return opts as unknown as MeshOptions
}
