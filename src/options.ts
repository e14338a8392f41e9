// createMesh options: validated at build time with a message naming the option (undici's habit).
import type { Tracer } from '@opentelemetry/api'
import type { Registry } from 'prom-client'
import { invalidArg } from './errors/index.js'
import type { ConfigInput } from './config/source.js'
import type { Logger } from './util/logger.js'
import { isIP } from 'node:net'
import { DNS_NAME } from './config/names.js'
import { splitHostPort } from './util/host-port.js'
import type { InboundOptions } from './inbound/core.js'
import { accessLogFromOption, type AccessLogOptions } from './telemetry/access-log.js'

const positive = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v) && v > 0

function checkInbound(v: unknown): void {
  if (typeof v !== 'object' || v === null) invalidArg('inbound', 'must be an object { maxConcurrent?, shedding?, drainTimeoutMs?, health? }')
  const o = v as Record<string, unknown>
  const known = ['maxConcurrent', 'shedding', 'drainTimeoutMs', 'health']
  for (const k of Object.keys(o)) if (!known.includes(k)) invalidArg(`inbound.${k}`, `unknown option (known: ${known.join(', ')})`)
  if (o.maxConcurrent !== undefined && (!Number.isInteger(o.maxConcurrent) || (o.maxConcurrent as number) < 1)) invalidArg('inbound.maxConcurrent', 'must be an integer ≥ 1')
  if (o.drainTimeoutMs !== undefined && !(positive(o.drainTimeoutMs) || o.drainTimeoutMs === 0)) invalidArg('inbound.drainTimeoutMs', 'must be a number of milliseconds ≥ 0')
  if (o.shedding !== undefined && o.shedding !== false) {
    if (typeof o.shedding !== 'object' || o.shedding === null) invalidArg('inbound.shedding', 'must be false or { maxEventLoopUtilization?, maxEventLoopDelayMs?, sampleIntervalMs? }')
    const s = o.shedding as Record<string, unknown>
    const sk = ['maxEventLoopUtilization', 'maxEventLoopDelayMs', 'sampleIntervalMs']
    for (const k of Object.keys(s)) if (!sk.includes(k)) invalidArg(`inbound.shedding.${k}`, `unknown option (known: ${sk.join(', ')})`)
    if (s.maxEventLoopUtilization !== undefined && !(positive(s.maxEventLoopUtilization) && (s.maxEventLoopUtilization as number) <= 1)) invalidArg('inbound.shedding.maxEventLoopUtilization', 'must be a number in (0, 1]')
    for (const k of ['maxEventLoopDelayMs', 'sampleIntervalMs']) if (s[k] !== undefined && !positive(s[k])) invalidArg(`inbound.shedding.${k}`, 'must be a positive number of milliseconds')
  }
  if (o.health !== undefined && o.health !== false) {
    if (typeof o.health !== 'object' || o.health === null) invalidArg('inbound.health', 'must be false or { port?, host?, metrics? }')
    const h = o.health as Record<string, unknown>
    if (h.port !== undefined && (!Number.isInteger(h.port) || (h.port as number) < 0 || (h.port as number) > 65535)) invalidArg('inbound.health.port', 'must be an integer 0..65535')
    if (h.host !== undefined && typeof h.host !== 'string') invalidArg('inbound.health.host', 'must be a string')
    if (h.metrics !== undefined && typeof h.metrics !== 'boolean') invalidArg('inbound.health.metrics', 'must be true or false')
  }
}

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
  /**
   * Control daemon URL(s) ("http://127.0.0.1:7070"); several fail over. Default: the WEFT_CONTROL
   * environment variable (comma-separated). None: embedded mode (config only).
   */
  control?: string | string[]
  /** Join token for the daemon (its data dir's join.token, or one from POST /v1/tokens). Default: WEFT_TOKEN. */
  token?: string
  /** Where the last good control snapshot is kept, to start from when the daemon is down. */
  stateDir?: string
  /** How long createMesh waits for the daemon's first snapshot before starting from the cache. Default 3000. */
  controlTimeoutMs?: number
  /**
   * Control mode: what to do when the daemon's view drops an AuthorizationPolicy or
   * RequestAuthentication this instance applied without deleting it (no DELETE or rollback lists it:
   * a daemon or store fault). Default false: keep the last applied one (access never widens), log an
   * error and count weft_config_rejected_total{source="deletion"}. true: also refuse inbound requests
   * (503 WEFT_ERR_CONTROL_UNAVAILABLE naming the resource, /readyz 503) until the daemon's view has
   * it again or deletes it (gRFC A88's fail_on_data_errors).
   */
  failOnDataErrors?: boolean
  /** This instance's labels (version, …): route subsets select on them once registered. */
  labels?: Record<string, string>
  /** The address registered for an unspecified listen host (0.0.0.0, ::). Default: 127.0.0.1. */
  advertiseAddress?: string
  /** The server side: concurrency limit, event-loop shedding, drain, health paths. */
  inbound?: InboundOptions
  /** On SIGTERM, drain (mesh.close()) and exit. Default false. */
  handleSignals?: boolean
  /**
   * Debug switches. `authz: true`: a 403 from AuthorizationPolicy also says why, rule by rule (what
   * `weft explain` prints: the rules that did or did not match and the value each part saw), not
   * only the deciding policy's name and rule. It shows policy contents to the caller: for
   * development. Default off.
   */
  debug?: { authz?: boolean }
  /**
   * One JSON line per request, outbound and inbound (telemetry/access-log.ts): `true` for both to
   * stdout, or { outbound?, inbound?, errorsOnly?, write? }. Default off.
   */
  accessLog?: boolean | AccessLogOptions
}

function checkDebug(v: unknown): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) invalidArg('debug', 'must be an object { authz? }')
  const o = v as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'authz') invalidArg(`debug.${k}`, 'unknown option (known: authz)')
  if (o.authz !== undefined && typeof o.authz !== 'boolean') invalidArg('debug.authz', 'must be true or false')
}

const KNOWN = new Set(['service', 'namespace', 'config', 'registry', 'locality', 'logger', 'tracer', 'dnsServers', 'control', 'token', 'stateDir', 'controlTimeoutMs', 'failOnDataErrors', 'labels', 'advertiseAddress', 'inbound', 'handleSignals', 'debug', 'accessLog'])

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
  if (opts.inbound !== undefined) checkInbound(opts.inbound)
  if (opts.handleSignals !== undefined && typeof opts.handleSignals !== 'boolean') invalidArg('handleSignals', 'must be true or false')
  if (opts.debug !== undefined) checkDebug(opts.debug)
  accessLogFromOption(opts.accessLog)
  if (opts.control !== undefined) {
    const urls = Array.isArray(opts.control) ? opts.control : [opts.control]
    if (urls.length === 0) invalidArg('control', 'must be a daemon URL or a non-empty list of them')
    for (const u of urls) if (typeof u !== 'string' || !/^https?:\/\/[^/\s]+\/?$/.test(u)) invalidArg('control', `"${String(u)}" is not a daemon URL like http://127.0.0.1:7070`)
  }
  if (opts.token !== undefined && (typeof opts.token !== 'string' || opts.token.length === 0)) invalidArg('token', 'must be a non-empty string (a join token)')
  if (opts.stateDir !== undefined && (typeof opts.stateDir !== 'string' || opts.stateDir.length === 0)) invalidArg('stateDir', 'must be a directory path')
  if (opts.controlTimeoutMs !== undefined && !(positive(opts.controlTimeoutMs) || opts.controlTimeoutMs === 0)) invalidArg('controlTimeoutMs', 'must be a number of milliseconds ≥ 0')
  if (opts.failOnDataErrors !== undefined && typeof opts.failOnDataErrors !== 'boolean') invalidArg('failOnDataErrors', 'must be true or false')
  if (opts.failOnDataErrors === true && opts.control === undefined && !process.env.WEFT_CONTROL) invalidArg('failOnDataErrors', 'applies in control mode only (set control, or WEFT_CONTROL)')
  if (opts.labels !== undefined) {
    if (typeof opts.labels !== 'object' || opts.labels === null || Array.isArray(opts.labels)) invalidArg('labels', 'must be an object of string labels')
    for (const [k, v] of Object.entries(opts.labels)) if (typeof v !== 'string') invalidArg(`labels.${k}`, 'must be a string')
  }
  if (opts.advertiseAddress !== undefined && (typeof opts.advertiseAddress !== 'string' || !isIP(opts.advertiseAddress))) invalidArg('advertiseAddress', 'must be an IP address')
  return opts as unknown as MeshOptions
}
